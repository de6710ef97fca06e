"""Liveness, readiness and startup probes: exec (docker exec), httpGet and tcpSocket to the pod IP.

One `ProbeWorker` task per (container instance, probe kind), like kubelet's prober workers: it waits
initialDelaySeconds, probes every periodSeconds with timeoutSeconds, and flips its result only after
successThreshold / failureThreshold consecutive outcomes. `on_change` tells the manager to recompute.
Liveness and readiness wait until the startup probe (if any) has succeeded. An httpGet whose path,
host or headers would break out of the request (CR, LF or other control characters, as Go's url.Parse
refuses them for kubelet; a header name that is no token) is refused before any byte is sent: the
probe fails, and says why once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable
from typing import Any

from runtime.edge import http11
from runtime.edge.pods.adapter import DockerAdapter

log = logging.getLogger(__name__)


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field name
_BAD_VALUE = re.compile(r"[\x00\r\n]")
MAX_HEAD = 64 << 10  # bytes of a probe's response head read at most (its body is never read)
_BAD_TARGET = re.compile(r"[\x00-\x1f\x7f]")  # control characters: Go's url.Parse refuses them


class BadProbe(ValueError):
    """An httpGet probe that cannot be sent as one well-formed request."""


def http_problem(h: dict[str, Any]) -> str | None:
    """Why the httpGet handler `h` cannot be sent safely, or None."""
    for what in ("path", "host", "scheme"):
        if _BAD_TARGET.search(str(h.get(what) or "")):
            return f"httpGet {what} {str(h.get(what))!r} contains control characters (CR, LF, …)"
    if " " in str(h.get("host") or ""):
        return f"httpGet host {str(h.get('host'))!r} contains a space"
    for hdr in h.get("httpHeaders") or []:
        name, value = str(hdr.get("name", "")), str(hdr.get("value", ""))
        if not _TOKEN.fullmatch(name):
            return f"httpGet header name {name!r} is not a valid HTTP field name"
        if _BAD_VALUE.search(value):
            return f"httpGet header {name} value contains CR, LF or NUL"
    return None


def _port(c: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in c.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"container {c.get('name')}: no port named {port!r}")


async def _http(
    host: str, port: int, path: str, scheme: str, headers: list[dict[str, str]], limit: float
) -> int:
    """One HTTP/1.1 GET (h11) and its status (200-399 is success; kubelet does not follow redirects
    off-host). Only the status is read, from a response head of at most MAX_HEAD bytes."""
    problem = http_problem({"path": path, "host": host, "scheme": scheme, "httpHeaders": headers})
    if problem is not None:
        raise BadProbe(problem)  # before connecting: nothing of it reaches the container
    ssl = None
    if scheme.upper() == "HTTPS":
        import ssl as ssl_mod

        ssl = ssl_mod.create_default_context()
        ssl.check_hostname, ssl.verify_mode = False, ssl_mod.CERT_NONE  # kubelet skips verification too
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ssl), limit)
    try:
        target = (path or "/").replace(" ", "%20")  # as Go's URL.String() writes it
        head = [("Host", f"{host}:{port}"), ("User-Agent", "kube-probe/kedge")]
        head += [(h["name"], h["value"]) for h in headers] + [("Accept", "*/*")]
        status, _ = await asyncio.wait_for(
            http11.get(reader, writer, target, head, head_limit=MAX_HEAD, status_only=True), limit
        )
        return int(status)
    finally:
        writer.close()


async def run_handler(
    docker: DockerAdapter, cid: str, c: dict[str, Any], handler: dict[str, Any], pod_ip: str, limit: float
) -> bool:
    """One probe or lifecycle-hook attempt; True on success. Errors count as failure."""
    return await attempt(docker, cid, c, handler, pod_ip, limit) is None


async def attempt(
    docker: DockerAdapter, cid: str, c: dict[str, Any], handler: dict[str, Any], pod_ip: str, limit: float
) -> str | None:
    """One probe or lifecycle-hook attempt: None on success, else what failed, in kubelet's words
    (the command's output; ``HTTP probe failed with statuscode: N``; ``dial tcp host:port: …``)."""
    where = ""
    try:
        if "exec" in handler:
            cmd = [str(x) for x in handler["exec"]["command"]]
            code, out = await docker.exec(cid, cmd, limit)
            if code == 0:
                return None
            if code == -1 and out == b"timeout":
                return f"command {cmd!r} timed out"
            return out.decode(errors="replace").strip() or f"command {cmd!r} exited with {code}"
        if "httpGet" in handler:
            h = handler["httpGet"]
            host, port, path = h.get("host") or pod_ip, _port(c, h["port"]), h.get("path", "/")
            where = f'Get "{str(h.get("scheme", "HTTP")).lower()}://{host}:{port}{path}": '
            status = await _http(host, port, path, h.get("scheme", "HTTP"), h.get("httpHeaders") or [], limit)
            return None if 200 <= status < 400 else f"HTTP probe failed with statuscode: {status}"
        if "tcpSocket" in handler:
            h = handler["tcpSocket"]
            host, port = h.get("host") or pod_ip, _port(c, h["port"])
            where = f"dial tcp {host}:{port}: "
            _, w = await asyncio.wait_for(asyncio.open_connection(host, port), limit)
            w.close()
            return None
        if "sleep" in handler:
            await asyncio.sleep(min(float(handler["sleep"]["seconds"]), limit))
            return None
    except TimeoutError:
        return f"{where}timeout after {limit:g}s"
    except (OSError, ValueError) as exc:
        log.debug("probe of %s failed: %s", c.get("name"), exc)
        # the errno's own text: asyncio's loop words a refused connect "Connect call failed (...)"
        return f"{where}{os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else exc}"
    except Exception as exc:  # a docker error (container gone) is a failed probe, never a crash
        log.debug("probe of %s errored: %s", c.get("name"), exc)
        return f"{where}{exc}"
    return "no handler"


Failed = Callable[[str, str, str], None]  # (container, probe kind, what failed)


class ProbeWorker:
    """Periodic prober for one probe of one container instance; `result` is the debounced outcome."""

    def __init__(
        self,
        docker: DockerAdapter,
        cid: str,
        c: dict[str, Any],
        kind: str,
        probe: dict[str, Any],
        pod_ip: str,
        on_change: Callable[[], None],
        gate: Callable[[], bool] = lambda: True,
        on_failure: Failed | None = None,
    ) -> None:
        self.kind, self.cid = kind, cid
        self.result = kind == "liveness"  # liveness starts "alive", readiness/startup "not yet"
        self._docker, self._c, self._probe, self._ip = docker, c, probe, pod_ip
        self._on_change, self._gate, self._on_failure = on_change, gate, on_failure
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"probe-{self.kind}-{self.cid[:12]}")

    def stop(self) -> None:
        if self._task:
            self._task.cancel()

    async def _loop(self) -> None:
        p = self._probe
        period = max(float(p.get("periodSeconds", 10)), 0.1)
        timeout = float(p.get("timeoutSeconds", 1))
        ok_needed, fail_needed = int(p.get("successThreshold", 1)), int(p.get("failureThreshold", 3))
        await asyncio.sleep(float(p.get("initialDelaySeconds", 0)))
        problem = http_problem(p["httpGet"]) if "httpGet" in p else None
        if problem is not None:  # every attempt fails without sending; said once
            log.warning("%s probe of %s refused: %s", self.kind, self._c.get("name"), problem)
        oks = fails = 0
        while True:
            if self._gate():
                failed = await attempt(self._docker, self.cid, self._c, p, self._ip, timeout)
                ok = failed is None
                oks, fails = (oks + 1, 0) if ok else (0, fails + 1)
                if failed is not None and self._on_failure is not None:  # one Unhealthy per failed attempt
                    self._on_failure(str(self._c.get("name", "")), self.kind, failed)
                new = True if oks >= ok_needed else (False if fails >= fail_needed else self.result)
                if new != self.result:
                    self.result = new
                    log.info(
                        "%s probe of %s: %s", self.kind, self._c.get("name"), "success" if new else "failure"
                    )
                    self._on_change()
                if self.kind == "startup" and self.result:
                    return  # startup probes stop once they succeed
            await asyncio.sleep(period)


Reported = Callable[[str, str], "dict[str, Any] | None"]


class ProbeSet(dict[tuple[str, str], ProbeWorker]):
    """A pod's probe workers by (container name, kind), kept in step with its running containers."""

    def sync(
        self,
        docker: DockerAdapter,
        running: list[tuple[dict[str, Any], str]],
        pod_ip: str,
        wake: Callable[[], None],
        reported: Reported,
        on_failure: Failed | None = None,
    ) -> None:
        live: set[tuple[str, str]] = set()
        for c, cid in running:
            for kind in ("startup", "readiness", "liveness"):
                probe = c.get(f"{kind}Probe")
                if not probe:
                    continue
                key = (c["name"], kind)
                live.add(key)
                worker = self.get(key)
                if worker is not None and worker.cid == cid:
                    continue
                if worker is not None:
                    worker.stop()
                gate = self._startup_gate(c["name"], cid) if kind != "startup" else (lambda: True)
                worker = ProbeWorker(docker, cid, c, kind, probe, pod_ip, wake, gate, on_failure)
                known = reported(c["name"], cid)
                if known is not None and kind != "liveness":
                    # adopted container: start from the last reported result, so a runtime restart
                    # does not flap Ready (and the Service endpoints) while the first probe runs
                    worker.result = bool(known.get("ready" if kind == "readiness" else "started"))
                self[key] = worker
                worker.start()
        for key in [k for k in self if k not in live]:
            self.pop(key).stop()

    def _startup_gate(self, name: str, cid: str) -> Callable[[], bool]:
        def gate() -> bool:
            w = self.get((name, "startup"))
            return w is None or w.cid != cid or w.result

        return gate

    def stop_all(self) -> None:
        for w in self.values():
            w.stop()
        self.clear()
