"""kubectl logs / exec / attach / port-forward / cp for pods on a kedge edge (issue 19), end to end.

kubectl (the one on PATH, 1.32 here) → the embedded API server (pods/log … proxied to the node's
kubelet endpoint, which `kedge init --embedded` points at the cloud's stream endpoint) → the cloud's
stream endpoint → a tunnel websocket the edge dials → the Docker engine. One cloud + edge for the
module (tests/fixtures/e2e.py); each test makes its own pod.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import ssl
import subprocess
import time
from typing import Any

import pytest

from runtime.config import KUBEEDGE_PROJECT_ID as PROJECT
from runtime.edge.layout import EdgeFiles
from runtime.paths import Paths
from tests.fixtures.e2e import E2E, run
from tests.fixtures.terminal import Terminal
from tests.fixtures.wait import eventually

IMAGE = "kedge.local/busybox:1"
LINES = "".join(f"line-{i}\n" for i in range(1, 6))


def apply_pod(e2e: E2E, name: str, spec: dict[str, Any]) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
           "spec": {"terminationGracePeriodSeconds": 1, "nodeName": e2e.edge.node, **spec}}  # fmt: skip
    e2e.cloud.kubectl("apply", "-f", "-", stdin=json.dumps(pod))


def running(e2e: E2E, name: str) -> dict[str, Any] | None:
    pod = e2e.cloud.get("pod", name)
    statuses = pod["status"].get("containerStatuses") or []
    ok = pod["status"].get("phase") == "Running" and statuses and all(c.get("ready") for c in statuses)
    return pod if ok else None


def kubectl(
    e2e: E2E, *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return run(["kubectl", "--kubeconfig", str(e2e.cloud.kubeconfig), *args], check=False, stdin=stdin,
               timeout=timeout)  # fmt: skip


def logs(e2e: E2E, *args: str) -> str:
    done = kubectl(e2e, "logs", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def cloud_metric(e2e: E2E, name: str) -> float:
    """One unlabelled sample of the cloud's /metrics."""
    import urllib.request

    addresses = json.loads((Paths.of(e2e.cloud.root, "cloud").state / "addresses.json").read_text())
    with urllib.request.urlopen(f"http://{addresses['health']}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found, f"{name} not in the cloud's metrics"
    return float(found.group(1))


@pytest.fixture(scope="module")
def talker(e2e: E2E) -> str:
    """A pod with an init container and two containers printing known lines, then sleeping."""
    script = "for i in 1 2 3 4 5; do echo line-$i; done; sleep 3600"
    apply_pod(e2e, "talker", {
        "initContainers": [{"name": "prep", "image": IMAGE, "command": ["sh", "-c", "echo prep-done"]}],
        "containers": [
            {"name": "app", "image": IMAGE, "command": ["sh", "-c", script]},
            {"name": "side", "image": IMAGE, "command": ["sh", "-c", "echo side-1; sleep 3600"]},
        ],
    })  # fmt: skip
    eventually(lambda: running(e2e, "talker"), 60, "pod talker running")
    eventually(lambda: logs(e2e, "talker", "-c", "app") == LINES, 20, "talker's lines in its log")
    return "talker"


def test_logs_with_every_option(e2e: E2E, talker: str) -> None:
    assert logs(e2e, talker, "-c", "app") == LINES
    assert logs(e2e, talker, "-c", "app", "--tail=2") == "line-4\nline-5\n"
    assert logs(e2e, talker, "-c", "app", "--tail=0") == ""
    assert logs(e2e, talker, "-c", "app", "--limit-bytes=7") == "line-1\n"
    stamped = logs(e2e, talker, "-c", "app", "--timestamps").splitlines()
    assert [s.split(" ", 1)[1] for s in stamped] == LINES.split()
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$", s.split(" ", 1)[0]) for s in stamped)
    assert logs(e2e, talker, "-c", "app", "--since=1h") == LINES
    future = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    assert logs(e2e, talker, "-c", "app", f"--since-time={future}") == ""
    assert logs(e2e, talker, "-c", "app", f"--since-time={past}") == LINES
    assert logs(e2e, talker, "-c", "side") == "side-1\n"
    assert logs(e2e, talker, "-c", "prep") == "prep-done\n"  # an init container's log
    every = logs(e2e, talker, "--all-containers")
    assert "prep-done\n" in every and LINES in every and "side-1\n" in every
    assert LINES in logs(e2e, "-l", "app=talker", "-c", "app")
    wrong = kubectl(e2e, "logs", talker, "-c", "nope")
    assert wrong.returncode != 0 and "container nope is not valid for pod talker" in wrong.stderr
    missing = kubectl(e2e, "logs", "no-such-pod")
    assert missing.returncode != 0 and 'pods "no-such-pod" not found' in missing.stderr
    none = kubectl(e2e, "logs", talker, "-c", "app", "--previous")
    assert (
        none.returncode != 0
        and 'previous terminated container "app" in pod "talker" not found' in none.stderr
    )


def test_logs_follow_sees_new_lines(e2e: E2E) -> None:
    apply_pod(e2e, "ticker", {"containers": [{"name": "app", "image": IMAGE, "command": [
        "sh", "-c", "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.5; done"]}]})  # fmt: skip
    eventually(lambda: running(e2e, "ticker"), 60, "pod ticker running")
    cmd = ["kubectl", "--kubeconfig", str(e2e.cloud.kubeconfig), "logs", "-f", "--tail=1", "ticker"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        second = proc.stdout.readline()  # printed after kubectl started: the stream follows
        assert first.startswith("tick-") and second.startswith("tick-")
        assert int(second.split("-")[1]) == int(first.split("-")[1]) + 1
        assert cloud_metric(e2e, "kedge_cloud_streams_active") == 1.0  # the follow's tunnel
    finally:
        proc.terminate()
        proc.wait(10)
    # the client left: the cloud closes the session (and its tunnel: the edge's end goes with it)
    eventually(lambda: cloud_metric(e2e, "kedge_cloud_streams_active") == 0.0, 10, "the session closed")


def test_logs_previous_after_a_crash(e2e: E2E) -> None:
    script = "echo started-$(cat /proc/sys/kernel/random/uuid); sleep 1; exit 1"
    apply_pod(
        e2e, "crasher", {"containers": [{"name": "app", "image": IMAGE, "command": ["sh", "-c", script]}]}
    )

    def restarted() -> bool:
        statuses = e2e.cloud.get("pod", "crasher")["status"].get("containerStatuses") or []
        return bool(statuses) and statuses[0].get("restartCount", 0) >= 1

    eventually(restarted, 90, "crasher restarted once")
    previous = logs(e2e, "crasher", "--previous")
    assert re.fullmatch(r"started-[0-9a-f-]{36}\n", previous), previous


def test_stream_endpoint_refuses_clients_without_an_api_server_certificate(e2e: E2E) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    port = e2e.cloud.stream_port

    # no client certificate: the handshake passes (metrics-server's bearer token may stand in for one
    # on the usage routes only, runtime/cloud/streams/bearer.py), a stream is refused
    with socket.create_connection(("127.0.0.1", port), 5) as raw, ctx.wrap_socket(raw) as tls:
        tls.sendall(
            b"GET /containerLogs/default/talker/app HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer anything\r\n\r\n"
        )
        assert tls.recv(100).startswith(b"HTTP/1.1 403 "), "a stream without a certificate"
    node_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    node_ctx.check_hostname, node_ctx.verify_mode = False, ssl.CERT_NONE
    files = EdgeFiles.of(e2e.edge.root)
    node_ctx.load_cert_chain(str(files.cert), str(files.key))
    with socket.create_connection(("127.0.0.1", port), 5) as raw, pytest.raises((ssl.SSLError, OSError)):
        with node_ctx.wrap_socket(raw) as tls:  # a node certificate (kedge's CA): not the cluster's
            tls.sendall(b"GET /containerLogs/default/talker/app HTTP/1.1\r\nHost: x\r\n\r\n")
            assert tls.recv(100) == b""
            raise OSError("closed")


def test_stream_endpoint_refuses_other_cluster_ca_identities(e2e: E2E, tmp_path: Any) -> None:
    """A certificate of the cluster's CA that is not an API server's kubelet client: 403."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    pki = e2e.cloud.root / "var" / "lib" / "kedge" / "apiserver" / "pki"
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    jane = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jane")])
    cert = (x509.CertificateBuilder().subject_name(jane).issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(ca_key, hashes.SHA256()))  # fmt: skip
    (tmp_path / "jane.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "jane.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.load_cert_chain(str(tmp_path / "jane.crt"), str(tmp_path / "jane.key"))
    with socket.create_connection(("127.0.0.1", e2e.cloud.stream_port), 5) as raw:
        with ctx.wrap_socket(raw) as tls:
            tls.sendall(b"GET /containerLogs/default/talker/app HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while chunk := tls.recv(4096):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 403 ") and b"'jane' may not open streams" in answer


def test_node_certificate_opens_no_stream_of_another_node(e2e: E2E) -> None:
    """The tunnel path names the node; a certificate of another node (or a session nobody opened) is
    refused at the upgrade."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    files = EdgeFiles.of(e2e.edge.root)
    ctx = ssl.create_default_context(cafile=str(files.ca))
    ctx.check_hostname = False
    ctx.load_cert_chain(str(files.cert), str(files.key))
    for node in ("some-other-node", e2e.edge.node):
        url = f"wss://127.0.0.1:{e2e.cloud.hub_port}/{PROJECT}/{node}/streams/{'ab' * 16}"
        with pytest.raises(InvalidStatus) as refused:
            connect(url, ssl=ctx, open_timeout=10).close()
        assert refused.value.response.status_code == 403


def test_logs_of_a_disconnected_edge_fail_at_once(e2e: E2E, talker: str) -> None:
    """`edge node X is not connected` — the request times out after 5 s otherwise (--request-timeout)."""
    e2e.edge.stop()
    try:
        done = kubectl(e2e, "logs", talker, "-c", "app", "--request-timeout=5s")
        assert done.returncode != 0
        assert f"edge node {e2e.edge.node} is not connected" in done.stderr, done.stderr
    finally:
        e2e.edge.run_detached()
        eventually(e2e.edge.connected, 60, "the edge to reconnect")
    eventually(lambda: logs(e2e, talker, "-c", "app") == LINES, 30, "logs served again after the reconnect")


@pytest.fixture(scope="module")
def shell(e2e: E2E) -> str:
    apply_pod(e2e, "shell", {"containers": [{"name": "app", "image": IMAGE, "command": ["sleep", "3600"]}]})
    eventually(lambda: running(e2e, "shell"), 60, "pod shell running")
    return "shell"


def test_exec_passes_output_and_exit_codes(e2e: E2E, shell: str) -> None:
    done = kubectl(e2e, "exec", shell, "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert done.returncode == 3, done.stderr
    assert done.stdout == "out\n" and "err\n" in done.stderr
    ok = kubectl(e2e, "exec", shell, "--", "cat", "/etc/hostname")
    assert ok.returncode == 0 and ok.stdout.strip(), ok.stderr
    wrong = kubectl(e2e, "exec", shell, "-c", "nope", "--", "true")
    assert wrong.returncode != 0 and "container nope is not valid for pod shell" in wrong.stderr


PROTOCOLS = pytest.mark.parametrize("websocket", ["true", "false"], ids=["websocket", "spdy"])


@PROTOCOLS
def test_exec_with_stdin(e2e: E2E, shell: str, websocket: str) -> None:
    """kubectl 1.32 speaks WebSocket v5 first; with it turned off, SPDY/3.1 (what older clients use)."""
    data = "".join(f"row {i}\n" for i in range(2000))  # several frames' worth
    cmd = ["kubectl", "--kubeconfig", str(e2e.cloud.kubeconfig), "exec", "-i", shell, "--", "sh", "-c",
           "cat; echo done; exit 4"]  # fmt: skip
    env = {**os.environ, "KUBECTL_REMOTE_COMMAND_WEBSOCKETS": websocket}
    done = subprocess.run(cmd, input=data, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 4, done.stderr
    assert done.stdout == data + "done\n"


def _tty_kubectl(e2e: E2E, websocket: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """kubectl with -v=8 (its request headers show the protocol it upgraded with) and the switch."""
    cmd = ["kubectl", "--kubeconfig", str(e2e.cloud.kubeconfig), "-v=8", *args]
    return cmd, {**os.environ, "KUBECTL_REMOTE_COMMAND_WEBSOCKETS": websocket}


def _upgraded_with(term: Terminal, websocket: str) -> None:
    """The protocol the upgrade settled on, from kubectl's own log."""
    if websocket == "true":
        term.expect(rb"The subprotocol is v5\.channel\.k8s\.io")
    else:  # the 101's response headers
        term.expect(rb"Response Status: 101 Switching Protocols.*\n(.*\n){0,5}.*Upgrade: SPDY/3\.1")


@PROTOCOLS
def test_exec_with_a_terminal_echoes_input_and_resizes(e2e: E2E, shell: str, websocket: str) -> None:
    cmd, env = _tty_kubectl(e2e, websocket, "exec", "-it", shell, "--", "sh")
    with Terminal(cmd, rows=33, cols=101, env=env) as term:
        _upgraded_with(term, websocket)
        term.write("echo typed-$((6*7))\r")
        term.expect(rb"typed-42")
        assert b"echo typed-" in term.seen  # the input echoed back by the container's terminal
        assert term.stty_size() == (33, 101)  # the terminal's size reached the container's pty
        for rows, cols in ((47, 133), (20, 70)):  # the window grows, then shrinks
            term.resize(rows, cols)
            term.shows_size(rows, cols)
        term.write("exit 7\r")
        assert term.proc.wait(30) == 7


@PROTOCOLS
def test_attach_with_a_terminal_resizes(e2e: E2E, websocket: str) -> None:
    """`kubectl attach -it` to a container started with a TTY: its size follows the client's window
    (docker's container resize)."""
    name = f"tty-{websocket}"
    apply_pod(e2e, name, {"containers": [{"name": "app", "image": IMAGE, "stdin": True, "tty": True,
                                          "command": ["sh"]}]})  # fmt: skip
    eventually(lambda: running(e2e, name), 60, f"pod {name} running")
    cmd, env = _tty_kubectl(e2e, websocket, "attach", "-it", name)
    try:
        with Terminal(cmd, rows=31, cols=99, env=env) as term:
            _upgraded_with(term, websocket)
            # kubectl attach sends the size plus one, then the size (so a re-attached screen redraws)
            term.shows_size(31, 99)
            term.resize(45, 140)
            term.shows_size(45, 140)
    finally:
        e2e.cloud.kubectl("delete", "pod", name, "--wait=false")


def test_attach_to_a_container_reading_stdin(e2e: E2E) -> None:
    script = "while read line; do echo got-$line; done"
    apply_pod(e2e, "reader", {"containers": [{"name": "app", "image": IMAGE, "stdin": True,
                                                "command": ["sh", "-c", script]}]})  # fmt: skip
    eventually(lambda: running(e2e, "reader"), 60, "pod reader running")
    cmd = ["kubectl", "--kubeconfig", str(e2e.cloud.kubeconfig), "attach", "-i", "reader"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"ping\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == b"got-ping\n"
    finally:
        proc.kill()
        proc.wait(10)


def test_port_forward_two_ports_parallel_large_transfers(e2e: E2E) -> None:
    """busybox httpd on two ports; a 10 MiB file fetched twice at once through one port-forward, and a
    small one through the other port; a port nobody listens on: kubelet's error on the error stream
    (kubectl 1.32 then gives the whole port-forward up, as it does with a kubelet)."""
    import concurrent.futures
    import hashlib
    import urllib.request

    script = ("mkdir -p /www && head -c 10485760 /dev/urandom > /www/big && echo small > /www/small && "
              "httpd -p 8081 -h /www && exec httpd -f -p 8080 -h /www")  # fmt: skip
    apply_pod(e2e, "web", {"containers": [{"name": "app", "image": IMAGE, "command": ["sh", "-c", script]}]})
    eventually(lambda: running(e2e, "web"), 60, "pod web running")
    eventually(lambda: kubectl(e2e, "exec", "web", "--", "ls", "/www/small").returncode == 0, 30, "files")
    want = kubectl(e2e, "exec", "web", "--", "sha256sum", "/www/big").stdout.split()[0]
    proc = _port_forward(e2e, ":8080", ":8081", ":9")
    try:
        assert proc.stdout is not None
        local: dict[int, int] = {}
        while len(local) < 3:
            line = proc.stdout.readline()
            found = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)", line)
            assert line, "kubectl port-forward ended"
            if found:
                local[int(found.group(2))] = int(found.group(1))

        def fetch(port: int, path: str) -> bytes:
            with urllib.request.urlopen(f"http://127.0.0.1:{local[port]}/{path}", timeout=60) as resp:
                return bytes(resp.read())

        assert proc.poll() is None, proc.communicate()
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            bigs = [pool.submit(fetch, 8080, "big") for _ in range(2)]
            small = pool.submit(fetch, 8081, "small")
            assert [hashlib.sha256(b.result()).hexdigest() for b in bigs] == [want, want]
            assert small.result() == b"small\n"
        with pytest.raises(OSError):
            fetch(9, "x")  # nothing listens on the pod's port 9: that connection fails
        _, err = proc.communicate(timeout=30)
        assert "error forwarding port 9 to pod web: dial tcp" in err and "connection refused" in err, err
    finally:
        proc.kill()
        proc.wait(10)


def _port_forward(e2e: E2E, *ports: str) -> subprocess.Popen[str]:
    cmd = ["kubectl", "--kubeconfig", str(e2e.cloud.kubeconfig), "port-forward", "pod/web", *ports]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_cp_round_trip(e2e: E2E, shell: str, tmp_path: Any) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    done = kubectl(e2e, "cp", str(src), f"{shell}:/tmp/copied")
    assert done.returncode == 0, done.stderr
    back = tmp_path / "back"
    done = kubectl(e2e, "cp", f"{shell}:/tmp/copied", str(back))
    assert done.returncode == 0, done.stderr
    assert (back / "a.txt").read_text() == "alpha\n"
    assert (back / "sub" / "b.bin").read_bytes() == (src / "sub" / "b.bin").read_bytes()


OTHER_KUBECTLS = [p for p in os.environ.get("KEDGE_TEST_KUBECTLS", "").split(os.pathsep) if p]


@pytest.mark.parametrize("binary", OTHER_KUBECTLS or [""])
def test_other_kubectls(e2e: E2E, talker: str, shell: str, binary: str) -> None:
    """Older clients (Debian's kubectl 1.20: SPDY only): logs, exec with stdin and exit code,
    port-forward. `apt-get download kubernetes-client && dpkg -x *.deb /tmp/k`, then
    KEDGE_TEST_KUBECTLS=/tmp/k/usr/bin/kubectl."""
    if not binary:
        pytest.skip("KEDGE_TEST_KUBECTLS names no other kubectl (e.g. Debian's 1.20)")
    base = [binary, "--kubeconfig", str(e2e.cloud.kubeconfig)]

    def k(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], input=stdin, capture_output=True, text=True, timeout=60)

    assert k("logs", talker, "-c", "app", "--tail=2").stdout == "line-4\nline-5\n"
    done = k("exec", "-i", shell, "--", "sh", "-c", "cat; exit 5", stdin="through stdin\n")
    assert (done.returncode, done.stdout) == (5, "through stdin\n"), done.stderr
    assert (
        k("exec", shell, "--", "sh", "-c", "mkdir -p /w && echo old > /w/f && httpd -p 8090 -h /w").returncode
        == 0
    )
    proc = subprocess.Popen(
        [*base, "port-forward", f"pod/{shell}", ":8090"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(re.findall(r"127\.0\.0\.1:(\d+)", proc.stdout.readline())[0])
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/f", timeout=30) as resp:
            assert resp.read() == b"old\n"
    finally:
        proc.kill()
        proc.wait(10)
