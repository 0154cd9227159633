"""The `godwit` console script: hand the invocation to the fork server, else run the CLI here.

Imports only the standard library's cheapest modules before it knows whether a server answers
(never anthropic, pydantic or Godwit's runtime). Any failure before the server's child has been
told to start falls back to the in-process CLI, silently; after that, the client only relays
signals and finally exits as the child exited (same code, or the same signal).
"""

from __future__ import annotations

import os
import signal
import socket
import sys

from agent.faststart import wire

# Signals the client passes on. A terminal sends them to the whole foreground process group, so
# they go to the child's group; one sent with kill() to the client goes to the child alone.
RELAYED = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGWINCH,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGTSTP,
    signal.SIGCONT,
    signal.SIGALRM,
)
SI_KERNEL = 0x80  # si_code of a signal the kernel raised (a terminal's ^C, ^Z, resize)
ACK_TIMEOUT_S = 5.0
SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes


def disabled() -> bool:
    """GODWIT_NO_SERVER set to anything but '' or '0' switches the server off."""
    return os.environ.get("GODWIT_NO_SERVER", "") not in ("", "0")


def run_dir() -> str:
    home = os.environ.get("GODWIT_HOME") or os.path.join(os.path.expanduser("~"), ".godwit")
    return os.path.join(os.path.realpath(os.path.expanduser(home)), "run")


def private_dir(path: str) -> bool:
    """True when `path` is a real folder (not a link) owned by us that nobody else may enter."""
    import stat

    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and st.st_mode & 0o077 == 0


def ensure_run_dir(path: str) -> bool:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return False
    return private_dir(path)


def main() -> int:
    """Console-script entry point: the fast path when it can be taken, else the normal CLI."""
    if not disabled() and sys.platform.startswith("linux") and hasattr(socket, "SO_PEERCRED"):
        served = _try_server()
        if served is not None:
            _exit_as(served)
    from agent.cli import main as cli_main

    return cli_main()


def _try_server() -> int | None:
    """The child's wait status, or None to run the normal path (nothing has run yet then)."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, RELAYED)
    committed = False
    try:
        conn = _connect()
        if conn is None:
            return None
        pid = _request(conn, mask)
        if pid is None:
            return None
        conn.settimeout(None)
        conn.sendall(wire.GO)
        committed = True
        return _relay(conn, pid)
    except Exception:  # noqa: BLE001 - before the commit, any failure means "run it here"
        if committed:
            # The child may have run: never run the command a second time.
            print("godwit: lost the connection to the fast-start server", file=sys.stderr)
            return 1 << 8
        return None
    finally:
        if not committed:
            # Signals that arrived meanwhile are delivered now, to the normal path.
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _connect() -> socket.socket | None:
    from agent.faststart.fingerprint import fingerprint

    folder = run_dir()
    if not ensure_run_dir(folder):
        return None
    key = fingerprint()
    path = os.path.join(folder, key + ".sock")
    if len(os.fsencode(path)) > SOCKET_PATH_MAX:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(ACK_TIMEOUT_S)
    try:
        conn.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        conn.close()
        _start_server(folder, key)
        return None
    except OSError:
        conn.close()
        return None
    # The folder is private, but it could have been swapped after we looked: accept only a
    # server running as ourselves.
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    if int.from_bytes(creds[4:8], sys.byteorder) != os.geteuid():
        conn.close()
        return None
    return conn


def _request(conn: socket.socket, mask: set[int]) -> int | None:
    umask = os.umask(0o077)
    os.umask(umask)
    # Python itself ignores SIGPIPE and SIGXFSZ; anything else ignored came from our caller
    # (`nohup`, a background job) and is inherited the same way by the child.
    ignored = {s for s in all_signals() if signal.getsignal(s) == signal.SIG_IGN}
    argv = [os.fsencode(a) for a in sys.argv]
    environ = [k + b"=" + v for k, v in os.environb.items()]
    fields = [
        wire.MAGIC,
        wire.encode_int(umask),
        wire.encode_signals(set(mask)),
        wire.encode_signals(ignored),
        wire.encode_int(len(argv)),
        *argv,
        *environ,
    ]
    cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        data = wire.pack(fields)
        sent = socket.send_fds(conn, [data], [cwd, 0, 1, 2])
        if sent < len(data):
            conn.sendall(data[sent:])
    finally:
        os.close(cwd)
    reply = wire.recv_exact(conn, 5)
    if reply[:1] != wire.PID:
        return None
    return int.from_bytes(reply[1:], "big")


def all_signals() -> list[int]:
    """The signals whose disposition a process can set (real-time ones left alone)."""
    return [
        s
        for s in signal.valid_signals()
        if s not in (signal.SIGKILL, signal.SIGSTOP) and s < signal.SIGRTMIN
    ]


def _relay(conn: socket.socket, pid: int) -> int:
    """Pass signals on until the child exits; follow its stops. Returns its wait status."""
    import threading

    def forward() -> None:
        while True:
            info = signal.sigwaitinfo(RELAYED)
            # SIGCONT resumes what a stop stopped: the child's whole group.
            group = 1 if info.si_code == SI_KERNEL or info.si_signo == signal.SIGCONT else 0
            try:
                conn.sendall(wire.SIGNAL + bytes([info.si_signo, group]))
            except OSError:
                return

    threading.Thread(target=forward, daemon=True, name="godwit-signal-relay").start()
    while True:
        kind = wire.recv_exact(conn, 1)
        value = int.from_bytes(wire.recv_exact(conn, 4), "big", signed=True)
        if kind == wire.EXITED:
            return value
        if kind == wire.STOPPED:
            # The child stopped (^Z, or it stopped itself): stop too, so the shell takes the
            # terminal back; the SIGCONT that resumes us is relayed to the child.
            os.kill(os.getpid(), signal.SIGSTOP)


def _exit_as(status: int) -> None:
    """Exit with the child's wait status: its code, or death by its signal."""
    sys.stdout.flush()
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
        # To this thread: the relay thread waits for process-wide signals and would take it.
        signal.raise_signal(sig)
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def _start_server(folder: str, key: str) -> None:
    """Start a server for this fingerprint in the background (its own session); it imports
    Godwit and the SDKs, then listens. This invocation does not wait for it."""
    from agent.faststart import spawn

    try:
        spawn.start_server(folder, key)
    except OSError:
        pass
