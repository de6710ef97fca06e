"""Pure pieces of the pod manager: the generated pause ELF, atomic volume dirs, quantities, translation."""

from __future__ import annotations

import io
import os
import signal
import struct
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from runtime.edge.pods import atomic_dir, labels, translate
from runtime.edge.pods.envs import expand
from runtime.edge.pods.images import pull_policy, registry_of
from runtime.edge.pods.sandbox import UnsupportedArch, pause_elf, rootfs_tar
from runtime.edge.pods.volumes import Volume
from runtime.quantity import parse_quantity


@pytest.mark.parametrize("arch,machine", [("x86_64", 62), ("aarch64", 183)])
def test_pause_elf_is_a_tiny_static_executable(arch: str, machine: int) -> None:
    elf = pause_elf(arch)
    assert elf[:4] == b"\x7fELF" and elf[4] == 2 and len(elf) < 512
    e_type, e_machine, _, e_entry, e_phoff = struct.unpack_from("<HHIQQ", elf, 16)
    assert (e_type, e_machine, e_phoff) == (2, machine, 64)
    p_type, p_flags, p_offset, p_vaddr, _, p_filesz, p_memsz, _ = struct.unpack_from("<IIQQQQQQ", elf, 64)
    assert (p_type, p_flags, p_offset, p_filesz, p_memsz) == (1, 5, 0, len(elf), len(elf))
    assert p_vaddr < e_entry < p_vaddr + len(elf)
    if arch == "aarch64":
        assert (len(elf) - 120) % 4 == 0


# The code bytes as verified by running them: x86_64 natively, aarch64 under qemu-aarch64-static
# (sleeps, exits 0 on SIGTERM) and disassembled with aarch64-linux-gnu-objdump. Pinned here so a
# change to the encoders cannot slip through on a machine without an aarch64 emulator.
VERIFIED_CODE = {
    "x86_64": "31ff68024000004889e631d241ba08000000b80e0000000f054889e731f631d241ba08000000b8800000000f05"
    "85c07ee831ffb8e70000000f05",
    "aarch64": "ff4300d1490088d2e90300f9000080d2e1030091020080d2030180d2e81080d2010000d4e0030091010080d2"
    "020080d2030180d2281180d2010000d41f0000f12dffff54000080d2c80b80d2010000d4",
}


@pytest.mark.parametrize("arch", sorted(VERIFIED_CODE))
def test_pause_code_is_the_verified_code(arch: str) -> None:
    assert pause_elf(arch)[120:].hex() == VERIFIED_CODE[arch]


def test_pause_elf_unknown_arch_names_the_way_out() -> None:
    with pytest.raises(UnsupportedArch, match="riscv64") as err:
        pause_elf("riscv64")
    assert err.value.hint and "docker import" in err.value.hint


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="runs the native x86_64 program")
def test_pause_program_sleeps_and_exits_zero_on_sigterm(tmp_path: Path) -> None:
    exe = tmp_path / "pause"
    exe.write_bytes(pause_elf())
    exe.chmod(0o755)
    proc = subprocess.Popen([str(exe)])
    time.sleep(0.3)  # the thing under test: it keeps running
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0


def test_rootfs_tar_is_deterministic() -> None:
    data = rootfs_tar("x86_64")
    assert data == rootfs_tar("x86_64")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        (member,) = tar.getmembers()
        assert member.name == "pause" and member.mode == 0o755


def test_atomic_dir_swaps_whole_payload(tmp_path: Path) -> None:
    d = tmp_path / "vol"
    assert atomic_dir.write(d, {"a": (b"1", 0o644), "sub/b": (b"2", 0o400)})
    assert (d / "a").read_bytes() == b"1" and (d / "sub" / "b").read_bytes() == b"2"
    assert os.readlink(d / "a") == "..data/a" and ((d / "sub" / "b").stat().st_mode & 0o777) == 0o400
    first = os.readlink(d / "..data")
    assert not atomic_dir.write(d, {"a": (b"1", 0o644), "sub/b": (b"2", 0o400)})  # unchanged: no rewrite
    assert atomic_dir.write(d, {"a": (b"new", 0o644)})
    assert (d / "a").read_bytes() == b"new" and not (d / "sub").exists()
    assert os.readlink(d / "..data") != first and not (d / first).exists()
    with pytest.raises(ValueError):
        atomic_dir.write(d, {"../escape": (b"x", 0o644)})


def test_quantities() -> None:
    assert parse_quantity("500m") * 1000 == 500
    assert parse_quantity("128Mi") == 128 * 2**20 and parse_quantity("1G") == 10**9
    assert parse_quantity(2) == 2 and parse_quantity("1.5") * 2 == 3
    with pytest.raises(ValueError):
        parse_quantity("lots")


def test_expand_like_kubelet() -> None:
    env = {"A": "x"}
    assert expand("$(A)-$(B)-$$(A)", env) == "x-$(B)-$(A)"


def test_images() -> None:
    assert registry_of("busybox") == "docker.io" and registry_of("reg.local:5000/a/b:1") == "reg.local:5000"
    assert pull_policy({"image": "busybox"}) == "Always" and pull_policy({"image": "a:1"}) == "IfNotPresent"
    assert pull_policy({"image": "a:latest"}) == "Always"


def test_container_translation() -> None:
    pod: dict[str, Any] = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "0123456789"},
        "spec": {
            "securityContext": {"runAsUser": 1000, "fsGroup": 2000},
            "containers": [
                {
                    "name": "c",
                    "image": "img",
                    "command": ["run"],
                    "args": ["$(X)"],
                    "ports": [{"containerPort": 80, "hostPort": 8080}],
                    "securityContext": {
                        "privileged": True,
                        "runAsGroup": 3,
                        "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                        "readOnlyRootFilesystem": True,
                    },
                    "resources": {"limits": {"cpu": "250m", "memory": "1Gi"}},
                    "volumeMounts": [
                        {"name": "cfg", "mountPath": "/cfg"},
                        {"name": "dev", "mountPath": "/dev/ttyUSB0"},
                        {"name": "mem", "mountPath": "/tmpfs"},
                    ],
                }
            ],
        },
    }
    c = pod["spec"]["containers"][0]
    vols = {
        "cfg": Volume("bind", "/state/cfg", read_only=True),
        "dev": Volume("device", "/dev/ttyUSB0"),
        "mem": Volume("tmpfs"),
    }
    name, cfg, host = translate.container_config(
        pod, c, kind="app", node="n", restarts=2, env={"X": "y"}, volumes=vols, sandbox_id="sb"
    )
    assert name == "kedge_c_p_ns_01234567_2"
    assert cfg["entrypoint"] == ["run"] and cfg["command"] == ["y"] and cfg["user"] == "1000:3"
    assert cfg["labels"][labels.RESTARTS] == "2" and cfg["labels"][labels.HASH] == labels.spec_hash(c)
    assert host["network_mode"] == host["ipc_mode"] == "container:sb"
    assert host["privileged"] and host["cap_add"] == ["NET_ADMIN"] and host["cap_drop"] == ["ALL"]
    assert host["read_only"] and host["group_add"] == ["2000"]
    assert host["nano_cpus"] == 250_000_000 and host["mem_limit"] == 2**30
    assert host["binds"] == ["/state/cfg:/cfg:ro"] and host["tmpfs"] == {"/tmpfs": "rw"}
    assert host["devices"] == ["/dev/ttyUSB0:/dev/ttyUSB0:rwm"]
    _, scfg, shost = translate.sandbox_config(pod, "n", 0)
    assert shost["port_bindings"] == {"80/tcp": 8080} and scfg["hostname"] == "p"


def test_backoff_doubles_to_the_cap_like_kubelet(tmp_path: Path) -> None:
    from runtime.edge.pods.adapter import DockerAdapter
    from runtime.edge.pods.worker import Ctx, PodWorker
    from tests.fixtures.pods import MemRefs

    now = [0.0]

    async def nothing() -> None:
        return None

    ctx = Ctx(
        docker=DockerAdapter("unix:///nonexistent"),
        node="n",
        state_dir=tmp_path,
        refs=MemRefs(),
        host_ip="127.0.0.1",
        clock=lambda: now[0],
        ensure_pause=nothing,
        wake=lambda: None,
    )
    w = PodWorker(ctx, {"metadata": {"uid": "u", "name": "p"}, "spec": {}})
    delays = []
    for _ in range(7):
        assert not w.in_backoff("c")
        w.bump("c")
        delays.append(w.backoff["c"][0])
        now[0] += delays[-1] - 0.01
        assert w.in_backoff("c")
        now[0] += 0.02
    assert delays == [10, 20, 40, 80, 160, 300, 300]
