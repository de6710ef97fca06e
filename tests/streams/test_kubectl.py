"""Real kubectl 1.32 against runtime/streams (through the test-only API server in fakeapi.py): exec exit
codes, stdin, a TTY with resize, attach, and port-forward with several ports and parallel 10 MiB
transfers — each over the WebSocket path kubectl tries first and over the SPDY fallback."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import select
import socket
import socketserver
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.fixtures.wait import eventually
from tests.streams.fakeapi import FakeApi, serve

pytestmark = pytest.mark.kubectl

# websocket=True: kubectl's first choice is taken (v5.channel.k8s.io from 1.30 on; port-forward in a
# WebSocket with KUBECTL_PORT_FORWARD_WEBSOCKETS=true). websocket=False: the server refuses the WebSocket
# and kubectl falls back to SPDY. Older clients (Debian's 1.20) speak SPDY only, on both paths.
PATHS = {True: "websocket", False: "spdy-fallback"}
ENV = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "true", "KUBECTL_PORT_FORWARD_WEBSOCKETS": "true"}


@functools.cache
def kubectl_minor() -> int:
    out = subprocess.run(["kubectl", "version", "--client", "-o", "json"], capture_output=True, text=True)
    return int(re.sub(r"\D.*", "", json.loads(out.stdout)["clientVersion"]["minor"]))


def expected(api: FakeApi, websocket: str, spdy: str) -> str:
    return websocket if api.websocket and kubectl_minor() >= 30 else spdy


@pytest.fixture(params=[True, False], ids=PATHS.get)
def api(request: pytest.FixtureRequest) -> Iterator[FakeApi]:
    with serve(FakeApi(websocket=request.param)) as running:
        yield running


def kubectl(
    api: FakeApi, tmp_path: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
    argv = ["kubectl", "--kubeconfig", str(kubeconfig), *args]
    env = dict(os.environ, **ENV)
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60, env=env)


def negotiated(api: FakeApi, kind: str) -> list[object]:
    return [value for what, value in api.events if what == kind]


def test_exec_passes_the_exit_code_and_both_outputs(api: FakeApi, tmp_path: Path) -> None:
    proc = kubectl(api, tmp_path, "exec", "p", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "out\n"
    assert proc.stderr.startswith("err\n")
    assert negotiated(api, "exec") == [expected(api, "v5.channel.k8s.io", "v4.channel.k8s.io")]
    assert kubectl(api, tmp_path, "exec", "p", "--", "true").returncode == 0


def test_exec_pipes_stdin_through_until_it_closes(api: FakeApi, tmp_path: Path) -> None:
    text = "".join(f"line {i}\n" for i in range(5000))  # ~50 KB: several frames
    proc = kubectl(api, tmp_path, "exec", "-i", "p", "--", "cat", stdin=text)
    assert (proc.returncode, proc.stdout) == (0, text), proc.stderr
    proc = kubectl(
        api, tmp_path, "exec", "-i", "p", "--", "sh", "-c", "read x; echo got-$x; exit 4", stdin="hi\n"
    )
    assert (proc.returncode, proc.stdout) == (4, "got-hi\n"), proc.stderr


def test_a_client_that_goes_away_ends_the_command(api: FakeApi, tmp_path: Path) -> None:
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
    argv = [
        "kubectl",
        "--kubeconfig",
        str(kubeconfig),
        "exec",
        "p",
        "--",
        "sh",
        "-c",
        "echo up; exec sleep 60",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=dict(os.environ, **ENV))
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"  # the session is up
    proc.kill()  # SIGKILL: no goodbye on the wire, only the closed TCP connection
    proc.wait()
    gone = eventually(lambda: negotiated(api, "gone"), within=15, what="the server noticed the client left")
    eventually(lambda: ended(int(str(gone[0]))), what="the command was killed")


def ended(pid: int) -> bool:
    try:
        return not Path(f"/proc/{pid}/cmdline").read_bytes()  # a zombie has no command line
    except FileNotFoundError:
        return True


def test_attach_streams_the_running_process(api: FakeApi, tmp_path: Path) -> None:
    proc = kubectl(api, tmp_path, "attach", "-i", "p", stdin="hello\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "attached\nhello\n"


class Terminal:
    """kubectl under `script`, so that it has a pseudo-terminal of a known size."""

    def __init__(self, command: str) -> None:
        self.proc = subprocess.Popen(
            ["script", "-qefc", command, "/dev/null"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.seen = b""

    def expect(self, pattern: bytes, within: float = 20.0) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + within
        while not re.search(pattern, self.seen):
            left = deadline - time.monotonic()
            assert left > 0, f"{pattern!r} not seen in {self.seen!r}"
            if select.select([self.proc.stdout], [], [], left)[0]:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                assert chunk, f"EOF before {pattern!r}: {self.seen!r}"
                self.seen += chunk

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()


def test_exec_with_a_tty_echoes_input_and_gets_the_terminal_size(api: FakeApi, tmp_path: Path) -> None:
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
    term = Terminal(f"stty cols 123 rows 45; kubectl --kubeconfig {kubeconfig} exec -it p -- sh")
    term.expect(rb"[#$] ")  # the shell's prompt, through the pty on the far side
    term.send(b"echo hi$((40+2))\n")
    term.expect(rb"echo hi\$\(\(40\+2\)\)\r\n")  # the far pty echoed what was typed
    term.expect(rb"hi42\r\n")
    term.send(b"exit 5\n")
    assert term.proc.wait(timeout=30) == 5
    assert ("resize", (123, 45)) in api.events


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[int], str]]:
    """Two local HTTP servers (the "pod's" ports) serving the same 10 MiB file; its sha256."""
    root = tmp_path_factory.mktemp("www")
    (root / "big").write_bytes(os.urandom(10 << 20))
    handler = functools.partial(QuietHandler, directory=str(root))
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [s.server_address[1] for s in servers], hashlib.sha256((root / "big").read_bytes()).hexdigest()
    for server in servers:
        server.shutdown()


def start_port_forward(
    api: FakeApi, tmp_path: Path, ports: list[int]
) -> tuple[subprocess.Popen[str], list[int]]:
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
    env = dict(os.environ, **ENV)  # kubectl 1.32: WebSocket is opt-in for port-forward
    proc = subprocess.Popen(
        ["kubectl", "--kubeconfig", str(kubeconfig), "port-forward", "--address", "127.0.0.1", "p",
         *(f":{p}" for p in ports)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    local = []
    for _ in ports:  # "Forwarding from 127.0.0.1:LOCAL -> REMOTE", one line per port
        line = proc.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+) -> (\d+)", line)
        assert match, f"unexpected port-forward output {line!r}"
        local.append(int(match.group(1)))
    return proc, local


def test_port_forward_two_ports_with_parallel_10mib_transfers(
    api: FakeApi, tmp_path: Path, web: tuple[list[int], str]
) -> None:
    ports, digest = web
    proc, local = start_port_forward(api, tmp_path, ports)
    try:

        def fetch(port: int) -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/big", timeout=60) as response:
                return hashlib.sha256(response.read()).hexdigest()

        with ThreadPoolExecutor(4) as pool:
            digests = list(pool.map(fetch, local * 2))  # twice through each port, all at once
        assert digests == [digest] * 4
        want = expected(api, "SPDY/3.1+portforward.k8s.io", "portforward.k8s.io")
        assert negotiated(api, "portforward") == [want]
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_port_forward_reports_a_failed_connection_on_its_error_stream(
    api: FakeApi, tmp_path: Path, web: tuple[list[int], str]
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    proc, local = start_port_forward(api, tmp_path, [dead])
    try:
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{local[0]}/", timeout=30).read()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert f"an error occurred forwarding {local[0]} -> {dead}: failed to connect to localhost:{dead}" in err


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


def test_port_forward_carries_uploads_both_ways_at_once(api: FakeApi, tmp_path: Path) -> None:
    """10 MiB sent up and echoed back on two connections at once: the server reads kubectl's data (no
    flow control from spdystream) while it writes, on every connection."""
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), EchoHandler) as echo:
        threading.Thread(target=echo.serve_forever, daemon=True).start()
        proc, local = start_port_forward(api, tmp_path, [echo.server_address[1]])
        payload = os.urandom(10 << 20)

        def round_trip(_: int) -> bytes:
            with socket.create_connection(("127.0.0.1", local[0]), timeout=60) as conn:
                sender = threading.Thread(
                    target=lambda: (conn.sendall(payload), conn.shutdown(socket.SHUT_WR))
                )
                sender.start()
                got = bytearray()
                while chunk := conn.recv(1 << 20):
                    got += chunk
                sender.join()
                return bytes(got)

        try:
            with ThreadPoolExecutor(2) as pool:
                assert [hashlib.sha256(r).digest() for r in pool.map(round_trip, range(2))] == [
                    hashlib.sha256(payload).digest()
                ] * 2
        finally:
            proc.terminate()
            proc.communicate(timeout=10)
            echo.shutdown()
