"""A seccomp filter for the bash sandbox: no new Unix-domain sockets, no io_uring.

A read-only file system does not stop `connect()` to a socket file: a sandboxed command could
talk to the Docker daemon (`/var/run/docker.sock`: root on the host), D-Bus, an SSH agent or a
database and act outside the sandbox through it. So, as Claude Code's sandbox does, the
commands may not create `AF_UNIX` sockets (`socketpair`, which only joins two ends inside the
sandbox, stays allowed). io_uring can open sockets without the `socket` system call, so it is
refused too, and so is every system call of a foreign ABI (32-bit `socketcall` on x86-64).
Refused calls fail with EPERM.

The filter is classic BPF, assembled here (no libseccomp needed) and handed to bubblewrap with
`--seccomp FD`. Only x86-64 and aarch64 are known; elsewhere `program()` returns None and the
sandbox runs without the filter.
"""

from __future__ import annotations

import errno
import platform
import struct

_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000 | errno.EPERM
_AF_UNIX = 1
_X32_BIT = 0x40000000
# machine -> (AUDIT_ARCH_*, __NR_socket, __NR_io_uring_setup)
_ARCHES = {
    "x86_64": (0xC000003E, 41, 425),
    "aarch64": (0xC00000B7, 198, 425),
}


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program(machine: str | None = None) -> bytes | None:
    """The filter for this machine's architecture, or None when it is not one we know."""
    arch = _ARCHES.get(machine or platform.machine())
    if arch is None:
        return None
    audit_arch, nr_socket, nr_io_uring = arch
    return b"".join(
        [
            _insn(_LD_W_ABS, 0, 0, 4),  # 0: A = seccomp_data.arch
            _insn(_JEQ_K, 1, 0, audit_arch),  # 1: native ABI? -> 3
            _insn(_RET_K, 0, 0, _RET_ERRNO),  # 2: foreign ABI: refused
            _insn(_LD_W_ABS, 0, 0, 0),  # 3: A = seccomp_data.nr
            _insn(_JGE_K, 5, 0, _X32_BIT),  # 4: x32 numbers -> 10
            _insn(_JEQ_K, 4, 0, nr_io_uring),  # 5: io_uring_setup -> 10
            _insn(_JEQ_K, 0, 2, nr_socket),  # 6: socket? -> 7, else -> 9
            _insn(_LD_W_ABS, 0, 0, 16),  # 7: A = args[0] (low half: the domain)
            _insn(_JEQ_K, 1, 0, _AF_UNIX),  # 8: AF_UNIX -> 10
            _insn(_RET_K, 0, 0, _RET_ALLOW),  # 9
            _insn(_RET_K, 0, 0, _RET_ERRNO),  # 10
        ]
    )
