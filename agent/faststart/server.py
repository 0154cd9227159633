"""The fork server: import Godwit and the SDKs once, then fork one child per invocation.

Started by `spawn.start_server` as `python -c BOOT RUN_DIR KEY`. It serves only while its code
and set-up still hash to KEY (see fingerprint.py), only peers running as its own user, and exits
after `GODWIT_SERVER_IDLE_S` seconds (default 1800) without a connection, when its socket file is
removed or replaced, or when the code changes. Per connection it forks a supervisor (which reads
the request, so a silent client cannot stall the server); the supervisor forks the worker,
relays signals to it and reports its stops and its exit (supervisor.py). The worker unwinds out
of `serve()` and becomes the invocation (worker.py).
"""

from __future__ import annotations

import fcntl
import gc
import importlib
import os
import select
import socket
import sys
import threading
import time

from agent.faststart import supervisor
from agent.faststart.client import private_dir
from agent.faststart.fingerprint import fingerprint

# Beyond every module of Godwit's own packages (warmup.preload_packages): what `godwit -p` and
# the terminal UI import lazily on their way to the first request or keystroke. A name that no
# longer exists is skipped (the server must never fail for it).
PRELOAD = (
    "ctypes",
    "asyncio",
    "ssl",
    "json",
    "subprocess",
    "pydantic",
    "anthropic",
    "anthropic.lib.streaming",
    "openai",
    "httpx2",
    "git",
    "gitdb",
    "textual.app",
)
CHECK_EVERY_S = 5.0


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} [{os.getpid()}] {message}", file=sys.stderr, flush=True)


def preload() -> None:
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a missing optional module must not stop us
            log(f"preload {name}: {type(exc).__name__}: {exc}")
    from agent.faststart import warmup

    warmup.warm(log)


def _listen(folder: str, key: str) -> tuple[socket.socket, str]:
    path = os.path.join(folder, key + ".sock")
    try:
        os.unlink(path)  # a dead server's socket; we hold the lock, so no live one has it
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # the socket is created 0600: no window where others may connect
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    sock.listen(64)
    return sock, path


def _same_file(path: str, ino: tuple[int, int]) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == ino


def _peer_is_us(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    return int.from_bytes(creds[4:8], sys.byteorder) == os.geteuid()


def serve(
    sock: socket.socket,
    path: str,
    ino: tuple[int, int],
    key: str,
    path_entries: list[str],
    close_in_child: list[int],
) -> supervisor.Job | None:
    """Accept until idle or stale. Returns None in the server when it should exit; returns the
    job in a forked worker, which must then run it (and never come back here)."""
    idle_s = float(os.environ.get("GODWIT_SERVER_IDLE_S") or 1800)
    last = checked = time.monotonic()
    while True:
        ready, _, _ = select.select([sock], [], [], min(CHECK_EVERY_S, idle_s))
        _reap()
        now = time.monotonic()
        if ready:
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            last = now
            if not _peer_is_us(conn):
                log("refused a connection from another user")
                conn.close()
                continue
            pid = os.fork()
            if pid == 0:
                sock.close()
                for fd in close_in_child:
                    os.close(fd)
                return supervisor.supervise(conn)  # only the worker returns
            conn.close()
            log(f"forked supervisor {pid}")
            continue
        if now - last >= idle_s:
            log("idle: exiting")
            return None
        if now - checked >= CHECK_EVERY_S:
            checked = now
            if not _same_file(path, ino):
                log("socket removed or replaced: exiting")
                return None
            if fingerprint(path_entries) != key:
                log("code or set-up changed: exiting")
                return None


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main() -> None:
    """Entry point of the server process (see spawn.BOOT)."""
    folder, key = sys.argv[1], sys.argv[2]
    path_entries = list(sys.path)  # BOOT already removed the `-c` entry, as the client did
    os.chdir("/")  # never pin, nor resolve anything against, the caller's folder
    if not private_dir(folder):
        log(f"{folder} is not a private folder of ours: not serving")
        return
    lock = os.open(
        os.path.join(folder, key + ".lock"),
        os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
        0o600,
    )
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another server for this key is starting or running
    if fingerprint(path_entries) != key:
        log("started for another fingerprint: not serving")
        return
    preload()
    if fingerprint(path_entries) != key:  # the code changed while we imported it
        log("code changed while preloading: not serving")
        return
    if threading.active_count() != 1:
        # Forking a process with other threads can copy a lock some thread holds forever.
        log(f"threads left running after the warm-up: {threading.enumerate()}; not serving")
        return
    # Objects that exist now live as long as the server: keep the collector of every worker
    # off them (it would touch, and so copy, every page it inherited).
    gc.collect()
    gc.freeze()
    sock, path = _listen(folder, key)
    log(f"serving on {path}")
    st = os.lstat(path)
    ino = (st.st_dev, st.st_ino)
    job = serve(sock, path, ino, key, path_entries, [lock])
    if job is None:
        sock.close()
        if _same_file(path, ino):
            os.unlink(path)
        return
    from agent.faststart.worker import run

    run(job)
