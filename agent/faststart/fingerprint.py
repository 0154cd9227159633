"""What a forked child cannot take over from its caller, hashed into the server's name.

A server may serve a client only if a process forked from it is indistinguishable from the
process the client would have become. What the request carries (argv, environment, working
directory, umask, signal mask and ignored signals, fds 0-2) is applied in the child; everything
else the kernel or the interpreter fixes at start-up goes into this fingerprint, so that a client
differing in any of it finds no server and runs the normal path:

- the code: every .py file of Godwit's packages (size, mtime), the interpreter and its version,
  `sys.path` (without the script's own folder) and the mtimes of its folders, which change when a
  package is installed or removed;
- interpreter set-up: `sys.flags` and the environment variables read at start-up or at import
  time by the modules the server pre-imports (PYTHON*, locale, TEXTUAL_*, ...);
- the process: user and groups, resource limits, niceness, CPU affinity, namespaces, cgroup,
  root folder, capabilities, seccomp and no_new_privs.

Standard library only; about 2 ms on a 2-core machine.
"""

from __future__ import annotations

import os
import sys

try:  # hashlib loads OpenSSL (~13 ms); the builtin blake2 module is enough for a cache key
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - interpreters built without it
    from hashlib import blake2b

PACKAGES = ("agent", "tools", "checkpoints", "model", "kernels")
# Read once, when a module the server pre-imports is imported (see server.PRELOAD), or by the
# interpreter at start-up; a client whose value differs must not share a server.
IMPORT_TIME_ENV_PREFIXES = (
    b"PYTHON",
    b"LC_",
    b"TEXTUAL_",
    b"GIT_PYTHON",
    b"OPENAI_API_",
    b"AZURE_OPENAI_",
)
IMPORT_TIME_ENV = (
    b"LANG",
    b"LANGUAGE",
    b"DEFER_PYDANTIC_BUILD",
    b"ESCDELAY",
    b"TERM_PROGRAM",
    b"LC_TERMINAL",
)
STATUS_KEYS = (b"CapInh", b"CapPrm", b"CapEff", b"CapBnd", b"CapAmb", b"NoNewPrivs", b"Seccomp")


def code_root() -> str:
    """The folder that holds the `agent` package (and its siblings)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _walk(folder: str, out: list[bytes]) -> None:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in sorted(entries, key=lambda e: e.name):
        if entry.name == "__pycache__":
            continue
        if entry.is_dir(follow_symlinks=False):
            _walk(entry.path, out)
        elif entry.name.endswith(".py"):
            st = entry.stat()
            out.append(
                f"{entry.path}\0{st.st_size}\0{st.st_mtime_ns}".encode("utf-8", "surrogateescape")
            )


def search_path() -> list[str]:
    """`sys.path` without the entry Python put first for the script, `-c` or `-m` (the
    client's bin folder or current folder; the server deletes its own before importing)."""
    if sys.flags.safe_path or sys.flags.isolated:
        return list(sys.path)
    return list(sys.path[1:])


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b"?"


def _process_facts() -> list[bytes]:
    import resource

    facts = [
        repr(
            (os.getuid(), os.geteuid(), os.getgid(), os.getegid(), sorted(os.getgroups()))
        ).encode()
    ]
    for name in sorted(n for n in dir(resource) if n.startswith("RLIMIT_")):
        try:
            facts.append(f"{name}={resource.getrlimit(getattr(resource, name))}".encode())
        except (OSError, ValueError):
            pass
    facts.append(
        repr((os.getpriority(os.PRIO_PROCESS, 0), sorted(os.sched_getaffinity(0)))).encode()
    )
    for ns in sorted(os.listdir("/proc/self/ns")):
        try:
            facts.append(os.readlink(f"/proc/self/ns/{ns}").encode())
        except OSError:
            pass
    facts.append(_read("/proc/self/cgroup"))
    try:
        facts.append(os.readlink("/proc/self/root").encode("utf-8", "surrogateescape"))
    except OSError:
        facts.append(b"?")
    for line in _read("/proc/self/status").splitlines():
        if line.split(b":")[0] in STATUS_KEYS:
            facts.append(line)
    return facts


def fingerprint(path: list[str] | None = None) -> str:
    """The hex key of this process's code, interpreter set-up and process facts."""
    path = search_path() if path is None else path
    parts: list[bytes] = [sys.executable.encode(), sys.version.encode(), repr(sys.flags).encode()]
    root = code_root()
    parts.append(root.encode("utf-8", "surrogateescape"))
    for package in PACKAGES:
        _walk(os.path.join(root, package), parts)
    for entry in path:
        try:
            parts.append(
                f"{entry}\0{os.stat(entry or '.').st_mtime_ns}".encode("utf-8", "surrogateescape")
            )
        except OSError:
            parts.append(f"{entry}\0-".encode("utf-8", "surrogateescape"))
    for key, value in sorted(os.environb.items()):
        if key in IMPORT_TIME_ENV or key.startswith(IMPORT_TIME_ENV_PREFIXES):
            parts.append(key + b"=" + value)
    parts.extend(_process_facts())
    return blake2b(b"\n".join(parts), digest_size=12).hexdigest()
