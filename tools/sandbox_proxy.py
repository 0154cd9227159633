"""The network of a sandbox whose `sandbox.network` is a list of hosts.

The sandbox keeps `--unshare-net`: nothing inside can open a connection to the outside. What
it gets instead is an HTTP proxy that reaches only the listed hosts:

- Godwit runs the proxy (`NetworkProxy`: an asyncio loop on a thread of its own, one per
  sandboxed shell, started with the shell and stopped with it). It serves `CONNECT host:port`
  (https; the tunnel carries any bytes, but only to a listed host and port) and plain `GET http://host/...` requests, and answers 403, with a body
  naming the host and the setting, for any host the list does not allow (tools/sandbox_hosts.py).
  The name is checked as the request gives it; only then is it resolved, and the connection goes
  to what that very name resolves to.
- Inside the sandbox, before the shell, a small bridge (`BRIDGE`, run by the sandbox's Python)
  listens on 127.0.0.1:PORT of the sandbox's own loopback and hands each accepted connection
  to the proxy as a file descriptor over a socket pair made outside (SCM_RIGHTS). The seccomp
  filter forbids new Unix-domain sockets inside (tools/sandbox_seccomp.py), so a socket file
  bound into the sandbox could not be connected to; an inherited socket pair can be used. The
  launcher forks the bridge and execs the shell with HTTP_PROXY, HTTPS_PROXY, ALL_PROXY (and
  the lower-case forms) pointing at the bridge, NO_PROXY for the sandbox's own loopback.
- The bridge lives in the sandbox's PID namespace: when the shell ends, the kernel kills it
  with everything else in there. It also ends when Godwit's end of the socket pair is gone.

Only programs that honour the proxy variables get through (curl, git, pip, most HTTP libraries);
any other connection is impossible, since the sandbox has no route out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import stat
import sys
import threading
from urllib.parse import urlsplit

from .sandbox_hosts import Host, HostPattern, is_allowed, parse_host

log = logging.getLogger(__name__)

_HEAD_LIMIT = 64 * 1024
_HEAD_TIMEOUT_S = 30
_CONNECT_TIMEOUT_S = 15
_MAX_CONNECTIONS = 256
_MAX_REFUSALS_KEPT = 100
_HOP_BY_HOP = {"connection", "proxy-connection", "keep-alive", "proxy-authorization", "te"}

# Run inside the sandbox as `python -I -S -c BRIDGE FD bash ...`: FD is the sandbox's end of the
# socket pair. The parent execs the shell; the forked child is the bridge.
BRIDGE = r"""
import os, socket, sys
ctl = socket.socket(fileno=int(sys.argv[1]))
lst = socket.socket()
lst.bind(("127.0.0.1", 0))
lst.listen(128)
url = "http://127.0.0.1:%d" % lst.getsockname()[1]
if os.fork() == 0:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    try:
        while True:
            c, _ = lst.accept()
            socket.send_fds(ctl, [b"c"], [c.fileno()])
            c.close()
    finally:
        os._exit(0)
ctl.close()
lst.close()
for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
    os.environ[k] = os.environ[k.lower()] = url
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "localhost,127.0.0.1,::1"
os.execvp(sys.argv[2], sys.argv[2:])
"""


def _python() -> str:
    """An interpreter the sandbox can see. A virtual environment's python links to its base
    interpreter, which is all the bridge needs (`-I -S`: the standard library only); /tmp and
    /run are private inside, so one that lives there is not used."""
    hidden = ("/tmp/", "/run/", "/var/run/")
    for candidate in (os.path.realpath(sys.executable), shutil.which("python3")):
        if candidate and not os.path.realpath(candidate).startswith(hidden):
            return os.path.realpath(candidate)
    return "python3"


class _BadRequest(Exception):
    """A request the proxy cannot serve; the message goes back to the client."""


def _refusal_text(host: Host, port: int) -> str:
    shown = f"[{host.name}]" if ":" in host.name else host.name
    return (
        f"Godwit's sandbox refused a connection to {shown}:{port}: that host is not in the "
        "sandbox.network setting, so sandboxed commands may not reach it. To allow it, add "
        f'"{shown}" to "sandbox": {{"network": [...]}} in your own settings '
        "(~/.godwit/settings.json or --settings), or ask the user to.\n"
    )


def _target(method: str, target: str) -> tuple[Host, int, str]:
    """(host, port, request target to send upstream) of a proxy request."""
    if method == "CONNECT":
        host_s, sep, port_s = target.rpartition(":")
        if not sep or not port_s.isdigit():
            raise _BadRequest("CONNECT needs host:port")
        path = ""
    else:
        url = urlsplit(target)
        if url.scheme.lower() != "http" or not url.netloc:
            raise _BadRequest(
                "this proxy serves CONNECT and absolute http:// URLs (use https through CONNECT)"
            )
        if "@" in url.netloc:
            raise _BadRequest("user names in proxy URLs are not supported")
        host_s, sep, port_s = url.netloc.rpartition(":")
        if not sep or "]" in port_s:
            host_s, port_s = url.netloc, "80"
        elif not port_s.isdigit():
            raise _BadRequest("bad port")
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
    host = parse_host(host_s)
    port = int(port_s)
    if host is None or not 0 < port < 65536:
        raise _BadRequest("not a host name or address")
    return host, port, path


def _reply(writer: asyncio.StreamWriter, code: int, reason: str, body: str) -> None:
    data = body.encode()
    writer.write(
        f"HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n"
        f"X-Godwit-Sandbox: {'refused' if code == 403 else 'error'}\r\n\r\n".encode()
        + data
    )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of file, then pass the end on (half-close)."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


class NetworkProxy:
    """The proxy for one sandboxed shell: `start()`, hand `sandbox_fd()` and `command()` to
    the sandbox, read `refused_since()` after each command, `stop()` with the shell."""

    def __init__(self, hosts: list[HostPattern]) -> None:
        self.hosts = list(hosts)
        self._ours, self._theirs = socket.socketpair()
        self._ours.setblocking(False)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="godwit-sandbox-proxy", daemon=True
        )
        self._tasks: set[asyncio.Task] = set()
        self._lock = threading.Lock()
        self._refused: list[str] = []
        self._refusal_count = 0
        self._stopped = False

    # -- the owner's side ----------------------------------------------------------------------

    def start(self) -> None:
        """Start serving (on a thread of its own)."""
        self._loop.call_soon(self._loop.add_reader, self._ours.fileno(), self._on_handoff)
        self._thread.start()

    def sandbox_fd(self) -> int:
        """The sandbox's end of the socket pair, to pass to it (the caller closes it after)."""
        return self._theirs.detach()

    def command(self, fd: int) -> list[str]:
        """The launcher to put before the shell's command line inside the sandbox."""
        return [_python(), "-I", "-S", "-c", BRIDGE, str(fd)]

    def refusal_count(self) -> int:
        """How many requests have been refused so far (a mark for `refused_since`)."""
        with self._lock:
            return self._refusal_count

    def refused_since(self, mark: int) -> list[str]:
        """The distinct `host:port`s refused after `mark` (at most the last hundred kept)."""
        with self._lock:
            new = self._refusal_count - mark
            recent = self._refused[-new:] if new > 0 else []
        return list(dict.fromkeys(recent))

    def stop(self) -> None:
        """Close every connection and the loop. Safe to call twice, and from a finaliser."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop already closed
                self._loop.call_soon_threadsafe(self._shutdown)
            self._thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()
        self._ours.close()
        if self._theirs.fileno() >= 0:
            self._theirs.close()

    def _shutdown(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(self._ours.fileno())
        for task in list(self._tasks):
            task.cancel()

        async def finish() -> None:
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._loop.stop()

        self._loop.create_task(finish())

    # -- the loop's side -----------------------------------------------------------------------

    def _on_handoff(self) -> None:
        """The bridge sent descriptors (anything inside the sandbox could: check each)."""
        try:
            msg, fds, _, _ = socket.recv_fds(self._ours, 16, 4)
        except BlockingIOError:
            return
        except OSError:
            msg, fds = b"", []
        if not msg and not fds:  # the sandbox is gone
            self._loop.remove_reader(self._ours.fileno())
            return
        for fd in fds:
            sock = self._adopt(fd)
            if sock is None:
                continue
            if len(self._tasks) >= _MAX_CONNECTIONS:
                sock.close()
                continue
            task = self._loop.create_task(self._serve(sock))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _adopt(fd: int) -> socket.socket | None:
        """`fd` as a stream socket, or None (closed) when it is anything else."""
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                sock = socket.socket(fileno=fd)
                if sock.type == socket.SOCK_STREAM:
                    sock.setblocking(False)
                    return sock
                sock.close()
                return None
        except OSError:
            pass
        with contextlib.suppress(OSError):
            os.close(fd)
        return None

    async def _serve(self, sock: socket.socket) -> None:
        writer = upstream = None
        try:
            reader, writer = await asyncio.open_connection(sock=sock, limit=_HEAD_LIMIT)
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HEAD_TIMEOUT_S)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            try:
                if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                    raise _BadRequest("not an HTTP request")
                host, port, path = _target(parts[0].upper(), parts[1])
            except _BadRequest as e:
                _reply(writer, 400, "Bad Request", f"Godwit's sandbox proxy: {e}.\n")
                return
            if not is_allowed(self.hosts, host, port):
                self._note_refusal(host, port)
                _reply(writer, 403, "Forbidden", _refusal_text(host, port))
                return
            try:
                # Resolved only now, and only this name: what was checked is what is reached.
                up_reader, upstream = await asyncio.wait_for(
                    asyncio.open_connection(host.name, port), _CONNECT_TIMEOUT_S
                )
            except (OSError, TimeoutError) as e:
                _reply(writer, 502, "Bad Gateway", f"Godwit's sandbox proxy: {host.name}: {e}\n")
                return
            if parts[0].upper() == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                upstream.write(_forwarded_head(parts[0], path, parts[2], lines[1:]))
            await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
        except (ConnectionError, OSError):
            pass
        finally:
            if writer is None:
                sock.close()
            for w in (writer, upstream):
                if w is not None:
                    w.close()
                    with contextlib.suppress(Exception):
                        await w.wait_closed()

    def _note_refusal(self, host: Host, port: int) -> None:
        shown = f"[{host.name}]" if ":" in host.name else host.name
        log.info("sandbox proxy refused %s:%s", shown, port)
        with self._lock:
            self._refusal_count += 1
            self._refused.append(f"{shown}:{port}")
            del self._refused[:-_MAX_REFUSALS_KEPT]


def _forwarded_head(method: str, path: str, version: str, headers: list[str]) -> bytes:
    """The request head for the origin server: origin-form target, no hop-by-hop headers, and
    `Connection: close` (the next request on the client's connection may name another host)."""
    named = set()
    for line in headers:
        key, _, value = line.partition(":")
        if key.strip().lower() == "connection":
            named |= {v.strip().lower() for v in value.split(",")}
    kept = [
        line
        for line in headers
        if line and line.partition(":")[0].strip().lower() not in _HOP_BY_HOP | named
    ]
    return "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""]).encode(
        "latin-1"
    )
