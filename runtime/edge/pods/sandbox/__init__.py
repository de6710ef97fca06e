"""The sandbox ("pause") image, built locally: no registry, no toolchain, air-gapped sites included.

The rootfs is one file, `/pause`: a static ELF of a few hundred bytes that this module assembles
from hand-encoded machine code. It blocks SIGINT and SIGTERM, waits for one of them with
rt_sigtimedwait(2) (PID 1 ignores default-action signals, so waiting is the only way to notice them)
and exits 0 — which is all a sandbox has to do: hold the pod's network and IPC namespaces.

    _start: rt_sigprocmask(SIG_BLOCK, {INT,TERM}, NULL, 8)
    wait:   r = rt_sigtimedwait({INT,TERM}, NULL, NULL, 8); if r <= 0: goto wait
            exit_group(0)

x86_64 runs in the tests on this machine; the aarch64 program was run under qemu-aarch64-static and
disassembled with aarch64-linux-gnu-objdump, and the unit tests pin both byte sequences. Other
architectures raise UnsupportedArch naming the way out (docker import a static `pause` by hand).
"""

from __future__ import annotations

import io
import platform
import struct

from runtime.errors import KedgeError

PAUSE_IMAGE = "kedge.local/pause:1"
SIG_SET = (1 << (2 - 1)) | (1 << (15 - 1))  # SIGINT, SIGTERM
_BASE = 0x400000
_EHDR, _PHDR = 64, 56


class UnsupportedArch(KedgeError):
    def __init__(self, arch: str) -> None:
        super().__init__(
            f"no built-in sandbox program for {arch!r} (have x86_64, aarch64)",
            hint=f"docker import a rootfs holding a static /pause as {PAUSE_IMAGE}",
        )


def _x86_64() -> bytes:
    head = (
        b"\x31\xff"  # xor edi, edi                 SIG_BLOCK
        + b"\x68"
        + struct.pack("<i", SIG_SET)  # push SIG_SET (sign-extended to 8 bytes)
        + b"\x48\x89\xe6"  # mov rsi, rsp              &set
        + b"\x31\xd2"  # xor edx, edx                 oldset = NULL
        + b"\x41\xba\x08\x00\x00\x00"  # mov r10d, 8   sigsetsize
        + b"\xb8\x0e\x00\x00\x00"  # mov eax, 14 (rt_sigprocmask)
        + b"\x0f\x05"  # syscall
    )
    wait = (
        b"\x48\x89\xe7"  # mov rdi, rsp
        + b"\x31\xf6"  # xor esi, esi
        + b"\x31\xd2"  # xor edx, edx
        + b"\x41\xba\x08\x00\x00\x00"  # mov r10d, 8
        + b"\xb8\x80\x00\x00\x00"  # mov eax, 128 (rt_sigtimedwait)
        + b"\x0f\x05"  # syscall
        + b"\x85\xc0"  # test eax, eax
    )
    jle = b"\x7e" + struct.pack("<b", -(len(wait) + 2))  # jle wait
    tail = b"\x31\xff" + b"\xb8\xe7\x00\x00\x00" + b"\x0f\x05"  # exit_group(0) (231)
    return head + wait + jle + tail


def _aarch64() -> bytes:
    def movz(rd: int, imm: int) -> int:
        return 0xD2800000 | (imm << 5) | rd

    svc, mov_x_sp = 0xD4000001, (lambda rd: 0x910003E0 | rd)
    words = [
        0xD10043FF,  # sub sp, sp, #16
        movz(9, SIG_SET),  # mov x9, #SIG_SET
        0xF90003E9,  # str x9, [sp]
        movz(0, 0),  # SIG_BLOCK
        mov_x_sp(1),  # x1 = &set
        movz(2, 0),
        movz(3, 8),
        movz(8, 135),  # rt_sigprocmask
        svc,
    ]
    wait_at = len(words)
    words += [mov_x_sp(0), movz(1, 0), movz(2, 0), movz(3, 8), movz(8, 137), svc]  # rt_sigtimedwait
    words.append(0xF100001F)  # cmp x0, #0
    back = (wait_at - len(words)) & 0x7FFFF
    words.append(0x54000000 | (back << 5) | 0xD)  # b.le wait
    words += [movz(0, 0), movz(8, 94), svc]  # exit_group(0)
    return b"".join(struct.pack("<I", w) for w in words)


_ARCHES = {
    "x86_64": (62, _x86_64),
    "amd64": (62, _x86_64),
    "aarch64": (183, _aarch64),
    "arm64": (183, _aarch64),
}


def pause_elf(arch: str | None = None) -> bytes:
    """A complete static ELF64 executable: header, one PT_LOAD program header (R+X), code."""
    arch = (arch or platform.machine()).lower()
    if arch not in _ARCHES:
        raise UnsupportedArch(arch)
    machine, code_of = _ARCHES[arch]
    code = code_of()
    size = _EHDR + _PHDR + len(code)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # 64-bit, little endian, SysV
    ehdr = ident + struct.pack(
        "<HHIQQQIHHHHHH", 2, machine, 1, _BASE + _EHDR + _PHDR, _EHDR, 0, 0, _EHDR, _PHDR, 1, 0, 0, 0
    )
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, _BASE, _BASE, size, size, 0x1000)
    return ehdr + phdr + code


def rootfs_tar(arch: str | None = None) -> bytes:
    """The sandbox rootfs as a tar stream for `docker import` (deterministic: same bytes every time)."""
    import tarfile  # only when the image is missing: the edge process stays small

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = pause_elf(arch)
        info = tarfile.TarInfo("pause")
        info.size, info.mode, info.mtime = len(data), 0o755, 0
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
