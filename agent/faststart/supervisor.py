"""The per-invocation supervisor: a fork of the server that reads one request, forks the
worker, and stands between it and the client until it exits.

It hands the client the worker's pid and starts the worker only when the client commits
(`G`): a client that gave up (timeout, signal) hangs up instead and the worker is killed before
it ran anything, so an invocation never runs twice. Afterwards it relays the client's signals,
reports the worker's stops (so that ^Z stops the client and the shell gets the terminal back) and
its wait status; when the client dies, the worker is killed as the client was (SIGKILL).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass

from agent.faststart import wire

REQUEST_TIMEOUT_S = 10.0
PR_SET_PDEATHSIG = 1


@dataclass
class Job:
    """One invocation, as the client sent it."""

    argv: list[bytes]
    environ: list[bytes]
    umask: int
    sigmask: set[int]
    ignored: set[int]
    cwd_fd: int
    stdio_fds: list[int]


def parse(fields: list[bytes], fds: list[int]) -> Job:
    if len(fields) < 5 or fields[0] != wire.MAGIC:
        raise wire.WireError("not a Godwit fast-start request")
    argc = wire.decode_int(fields[4])
    if not 1 <= argc <= len(fields) - 5:
        raise wire.WireError("bad argument count")
    argv, environ = fields[5 : 5 + argc], fields[5 + argc :]
    if any(b"=" not in e[1:] or b"\0" in e for e in environ) or any(b"\0" in a for a in argv):
        raise wire.WireError("malformed argv or environment")
    umask = wire.decode_int(fields[1])
    if not 0 <= umask <= 0o777:
        raise wire.WireError("bad umask")
    return Job(
        argv,
        environ,
        umask,
        wire.decode_signals(fields[2]),
        wire.decode_signals(fields[3]),
        fds[0],
        fds[1:],
    )


def supervise(conn: socket.socket) -> Job:
    """Runs in a fresh fork of the server. Returns the Job only in the worker; the supervisor
    itself always ends with os._exit and never unwinds into the server's loop."""
    try:
        conn.settimeout(REQUEST_TIMEOUT_S)
        job = parse(*wire.recv_request(conn))
        go_read, go_write = os.pipe()
        pid = os.fork()
    except BaseException as exc:  # noqa: BLE001 - whatever it is, this process ends here
        _log(f"bad request: {type(exc).__name__}: {exc}")
        os._exit(1)
    if pid == 0:
        os.close(go_write)
        conn.close()
        _become_worker(go_read)
        return job
    code = 1
    try:
        os.close(go_read)
        os.setpgid(pid, pid)  # the worker does it too: whichever runs first
        for fd in (job.cwd_fd, *job.stdio_fds):
            os.close(fd)
        conn.sendall(wire.PID + pid.to_bytes(4, "big"))
        if wire.recv_exact(conn, 1) != wire.GO:
            raise wire.WireError("the client did not commit")
        os.write(go_write, b"g")
        os.close(go_write)
        _log(f"worker {pid} started")
        conn.settimeout(None)
        code = _attend(conn, pid)
    except BaseException as exc:  # noqa: BLE001 - before the worker was released
        _log(f"supervisor: {type(exc).__name__}: {exc}")
        _kill(pid, signal.SIGKILL, group=False)  # it is blocked on go_read, never reaped yet
    finally:
        os._exit(code)


def _log(message: str) -> None:
    print(f"[{os.getpid()}] {message}", file=sys.stderr, flush=True)


def _become_worker(go_read: int) -> None:
    """First steps of the worker: own process group, die with the supervisor, wait for go."""
    os.setpgid(0, 0)
    import ctypes

    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)  # the supervisor died before we could tie ourselves to it
    if os.read(go_read, 1) != b"g":
        os._exit(1)  # the client gave up: nothing has run
    os.close(go_read)


def _attend(conn: socket.socket, pid: int) -> int:
    """Relay signals until the worker exits; report stops and the final wait status.

    The worker is reaped only after the relay thread can no longer signal it (a reaped pid may
    belong to another process a moment later): its exit is first observed with WNOWAIT."""
    lock = threading.Lock()
    done = False

    def relay() -> None:
        while True:
            try:
                msg = wire.recv_exact(conn, 3)
            except (OSError, wire.WireError):
                msg = None  # the client died: so does the invocation, as if it was killed
            with lock:
                if done:
                    return
                if msg is None:
                    _kill(pid, signal.SIGKILL, group=False)
                    return
                if msg[:1] == wire.SIGNAL and msg[1] in signal.valid_signals():
                    _kill(pid, msg[1], group=bool(msg[2]))

    threading.Thread(target=relay, daemon=True).start()
    while True:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WSTOPPED | os.WNOWAIT)
        if info.si_code == os.CLD_STOPPED:
            _, status = os.waitpid(pid, os.WUNTRACED)  # consume this stop's report
            if os.WIFSTOPPED(status):
                _send(conn, wire.STOPPED, os.WSTOPSIG(status))
                continue
        else:
            with lock:
                done = True
            _, status = os.waitpid(pid, 0)
        if os.WIFSTOPPED(status):
            continue
        _send(conn, wire.EXITED, status)
        return 0


def _send(conn: socket.socket, kind: bytes, value: int) -> None:
    try:
        conn.sendall(kind + value.to_bytes(4, "big", signed=True))
    except OSError:
        pass  # the client is gone; the relay thread has seen it too


def _kill(pid: int, sig: int, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass
