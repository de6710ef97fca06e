"""Undo `kedge join` under a root: stop the runtime, remove kedge's containers, state, certificates, config.

Rows have the cloud reset's shape (``object``, ``result``, optional ``error``) so `kedge reset all`
prints one table. Every step runs even when an earlier one failed, and a second run finds nothing to do
(results "not running", "not found"). Containers are chosen by kedge's labels for this node only;
images are kept unless ``prune_images``. Cluster objects are touched only with ``delete_node`` (through
the cloud channel, with this node's own certificate). Never touches the cloud role's files.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from runtime.config import load_edge
from runtime.edge.layout import EdgeFiles
from runtime.errors import KedgeError
from runtime.fsutil import live_pid

UNIT = Path("/etc/systemd/system/kedge-edge.service")


def _row(obj: str, result: str, error: str = "") -> dict[str, str]:
    return {"object": obj, "result": result, **({"error": error} if error else {})}


def _pid(files: EdgeFiles) -> int | None:
    return live_pid(files.paths.pid_file)


def stop_runtime(files: EdgeFiles, dry_run: bool) -> dict[str, str]:
    if UNIT.exists() and files.paths.root == Path("/") and shutil.which("systemctl"):
        if dry_run:
            return _row(f"systemd unit {UNIT}", "would stop")
        done = subprocess.run(["systemctl", "disable", "--now", UNIT.name], capture_output=True, text=True)
        if done.returncode != 0:
            return _row(f"systemd unit {UNIT}", "failed", done.stderr.strip())
        UNIT.unlink(missing_ok=True)
        return _row(f"systemd unit {UNIT}", "stopped")
    pid = _pid(files)
    label = f"process kedge edge run (pid {pid})" if pid else "process kedge edge run"
    if pid is None:
        return _row(label, "not running")
    if dry_run:
        return _row(label, "would stop")
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _pid(files) == pid:
            time.sleep(0.1)
        if _pid(files) == pid:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except OSError as exc:
        return _row(label, "failed", str(exc))
    return _row(label, "stopped")


def remove_containers(node: str, docker_host: str, dry_run: bool, prune_images: bool) -> list[dict[str, str]]:
    """kedge's containers of this node (labels io.kedge.managed=true, io.kedge.node=<node>)."""
    try:
        import docker

        client = docker.DockerClient(base_url=docker_host, timeout=30) if docker_host else docker.from_env()
    except Exception as exc:
        return [_row("containers of kedge", "failed", f"Docker engine: {exc}")]
    rows: list[dict[str, str]] = []
    images: set[str] = set()
    try:
        found = client.containers.list(
            all=True, filters={"label": ["io.kedge.managed=true", f"io.kedge.node={node}"]}
        )
        if not found:
            rows.append(_row(f"containers of node {node}", "not found"))
        for c in found:
            label = f"container {c.name} ({c.short_id})"
            images.add(str(c.attrs.get("Image", "")))
            if dry_run:
                rows.append(_row(label, "would delete"))
                continue
            try:
                c.remove(force=True)
                rows.append(_row(label, "deleted"))
            except Exception as exc:
                rows.append(_row(label, "failed", str(exc)))
        if prune_images:
            for image in sorted(i for i in images if i):
                if dry_run:
                    rows.append(_row(f"image {image[:19]}", "would delete"))
                    continue
                try:
                    client.images.remove(image)
                    rows.append(_row(f"image {image[:19]}", "deleted"))
                except Exception as exc:
                    rows.append(_row(f"image {image[:19]}", "failed", str(exc)))
    except Exception as exc:
        rows.append(_row("containers of kedge", "failed", str(exc)))
    finally:
        client.close()
    return rows


def delete_node_via_cloud(files: EdgeFiles, node: str, server: str) -> dict[str, str]:
    """``delete null/node/<node>`` through the cloud channel with this node's certificate: kedge's cloud
    deletes the Node on the edge's behalf (as Kubernetes lets a kubelet delete its own Node); KubeEdge's
    cloudcore does not, which is said at once, naming the kubectl command."""
    from runtime.edge.edgehub import EdgeHub
    from runtime.protocol import GROUP_META, OP_DELETE, SRC_EDGED, new_message, split_result

    async def go() -> dict[str, str]:
        async def ignore(_: Any) -> None:
            return None

        hub = EdgeHub(
            server,
            node,
            on_message=ignore,
            outbox_path=files.paths.state / "reset-outbox.db",
            cert=str(files.cert),
            key=str(files.key),
            ca=str(files.ca),
            reconnect_cap=1.0,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(hub.run(stop))
        try:
            await hub.wait_connected(10)
            if hub.status()["peer_kind"] != "kedge":  # cloudcore: "operation type: delete unsupported"
                return _row(
                    f"node {node}",
                    "failed",
                    f"the cloud at {server} is KubeEdge's cloudcore, which does not delete a Node for its "
                    f"edge: run `kubectl delete node {node}` with cluster access",
                )
            resp = await hub.request(
                new_message(SRC_EDGED, GROUP_META, OP_DELETE, f"null/node/{node}", None), timeout=10
            )
            _, err = split_result(resp.content)
            if err is not None and err.get("code") != 404:
                return _row(f"node {node}", "failed", str(err.get("message")))
            return _row(f"node {node}", "deleted" if err is None else "not found")
        except (TimeoutError, KedgeError) as exc:
            return _row(f"node {node}", "failed", f"cloud {server}: {exc or 'not reachable'}")
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    return asyncio.run(go())


def reset_edge(
    root: Path, *, dry_run: bool = False, prune_images: bool = False, delete_node: bool = False
) -> list[dict[str, str]]:
    """Everything `kedge join` and `kedge edge run` left under ``root``; safe to run twice."""
    files = EdgeFiles.of(root)
    rows = [stop_runtime(files, dry_run)]
    node, server, docker_host = "", "", ""
    with contextlib.suppress(KedgeError):
        cfg = load_edge(None, root)
        node, server, docker_host = cfg.node.name, cfg.hub.server, cfg.runtime.docker_host
    if delete_node and node and server:
        rows.append(
            _row(f"node {node}", "would delete") if dry_run else delete_node_via_cloud(files, node, server)
        )
    if node:
        rows += remove_containers(node, docker_host, dry_run, prune_images)
    p = files.paths
    sock = p.status_socket
    with contextlib.suppress(KedgeError):
        sock = Path(load_edge(None, root).status.socket)
    targets = [p.config_file, p.pki, p.state, p.log_file, p.pid_file, sock]
    for t in targets:
        if not t.exists() and not t.is_symlink():
            rows.append(_row(str(t), "not found"))
            continue
        if dry_run:
            rows.append(_row(str(t), "would delete"))
            continue
        try:
            shutil.rmtree(t) if t.is_dir() and not t.is_symlink() else t.unlink()
            rows.append(_row(str(t), "removed"))
        except OSError as exc:
            rows.append(_row(str(t), "failed", str(exc)))
    return rows
