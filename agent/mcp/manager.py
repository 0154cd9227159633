"""The MCP servers of one session: started together, watched, called, stopped.

The `mcp` package is asynchronous and keeps each connection inside nested async contexts that
must be entered and left by the same task. Godwit's tools run in worker threads and the UI owns
its own event loop, so the manager keeps a private event loop in a daemon thread: each server is
one task there that connects, lists the tools, then waits for the stop signal (pinging now and
then, so a server that dies between calls is noticed); tool calls from worker threads are
submitted to that loop and waited for with a time limit.

Failures are never raised out of the manager: a server that cannot start (bad config, missing
command, no answer within `start_timeout`), or that dies later, is marked failed, its tools are
gone from `tools()`, and it is reported exactly once through `on_failure` and `take_reports()`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

from agent.mcp.config import HttpServer, SdkServer, ServerSpec, SseServer, StdioServer
from agent.process_guard import guarded

State = Literal["pending", "connected", "failed", "stopped", "not approved"]
DEFAULT_START_TIMEOUT_S = 30.0
DEFAULT_TOOL_TIMEOUT_S = 600.0
DEFAULT_PING_INTERVAL_S = 5.0
_STOP_TIMEOUT_S = 10.0  # the package's own shutdown is bounded (about 6 s at worst per server)
_STDERR_TAIL = 600
# The package logs a malformed line from a server with a traceback; the manager reports the
# server's failure itself, so that noise stays out of the terminal.
log = logging.getLogger("godwit.mcp")
logging.getLogger("mcp").addHandler(logging.NullHandler())
logging.getLogger("mcp").propagate = False


def _env_seconds(name: str, default: float) -> float:
    """Claude Code's MCP_TIMEOUT / MCP_TOOL_TIMEOUT, in milliseconds."""
    try:
        return max(0.1, float(os.environ[name]) / 1000)
    except (KeyError, ValueError):
        return default


@dataclass
class Server:
    """What the manager knows of one server."""

    spec: ServerSpec
    state: State = "pending"
    error: str | None = None
    tools: list[Any] = field(default_factory=list)  # mcp_types.Tool
    server_info: str = ""
    session: Any = None
    stop: asyncio.Event | None = None
    stderr: Any = None
    reported: bool = False

    @property
    def name(self) -> str:
        return self.spec.name


class McpCallError(Exception):
    """A tool call that did not get an answer (server gone, timed out, interrupted)."""


class McpManager:
    """Starts, watches and stops the servers of `specs`; thread-safe for tool calls."""

    def __init__(
        self,
        specs: list[ServerSpec],
        *,
        cwd: Path,
        start_timeout: float | None = None,
        tool_timeout: float | None = None,
        ping_interval: float = DEFAULT_PING_INTERVAL_S,
        on_failure: Callable[[str, str], None] | None = None,
    ) -> None:
        self.servers = {s.name: Server(s) for s in specs}
        self.cwd = Path(cwd)
        self.start_timeout = start_timeout or _env_seconds("MCP_TIMEOUT", DEFAULT_START_TIMEOUT_S)
        self.tool_timeout = tool_timeout or _env_seconds("MCP_TOOL_TIMEOUT", DEFAULT_TOOL_TIMEOUT_S)
        self.ping_interval = ping_interval
        self.on_failure = on_failure
        self._reports: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: list[asyncio.Future] = []
        self._closed = False
        # How to reach servers of `type: "sdk"` (set by the stream-json session; see bridge.py).
        self.sdk_send: Any = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start every server concurrently; return once each is connected or failed (at most
        about `start_timeout` seconds)."""
        pending = [s for s in self.servers.values() if s.state == "pending"]
        for server in pending:
            if server.spec.error:
                self._fail(server, server.spec.error)
        pending = [s for s in pending if s.state == "pending"]
        if not pending:
            return
        self._ensure_loop()
        ready = [threading.Event() for _ in pending]
        for server, event in zip(pending, ready):
            self._tasks.append(
                asyncio.run_coroutine_threadsafe(self._serve(server, event), self._loop)
            )
        deadline = time.monotonic() + self.start_timeout + 5
        for server, event in zip(pending, ready):
            if not event.wait(max(0.0, deadline - time.monotonic())):
                self._fail(server, f"did not start within {self.start_timeout:.0f} s")

    async def astart(self) -> None:
        """`start` for callers on an event loop (it blocks a worker thread, not the loop)."""
        await asyncio.get_running_loop().run_in_executor(None, self.start)

    def close(self) -> None:
        """Stop every server (stdin closed, then the process group killed) and the loop."""
        if self._closed:
            return
        self._closed = True
        loop = self._loop
        if loop is None:
            return
        for server in self.servers.values():
            if server.stop is not None:
                loop.call_soon_threadsafe(server.stop.set)
        end = time.monotonic() + _STOP_TIMEOUT_S
        for task in self._tasks:
            try:
                task.result(timeout=max(0.0, end - time.monotonic()))
            except Exception:
                log.debug("an MCP server did not stop cleanly", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        for server in self.servers.values():
            if server.state == "connected":
                server.state = "stopped"
            if server.stderr is not None:
                server.stderr.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_loop(self) -> None:
        if self._loop is not None:
            return
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="godwit-mcp", daemon=True
        )
        self._thread.start()

    # -- one server ------------------------------------------------------------------------

    async def _serve(self, server: Server, ready: threading.Event) -> None:
        import anyio  # the mcp package's own dependency; only loaded when servers are used
        from mcp import ClientSession

        server.stop = asyncio.Event()
        try:
            async with AsyncExitStack() as stack:
                # Entering the transport only spawns the process or builds the client; the
                # time limit covers the handshake (a scope around the entering would be left
                # by another scope and anyio refuses that).
                read, write = await stack.enter_async_context(self._transport(server))
                session = await stack.enter_async_context(ClientSession(read, write))
                with anyio.fail_after(self.start_timeout):
                    init = await session.initialize()
                    tools = await _list_tools(session)
                info = getattr(init, "server_info", None)
                server.server_info = f"{info.name} {info.version}" if info else ""
                server.session, server.tools, server.state = session, tools, "connected"
                ready.set()
                await self._watch(server, session)
        except Exception as exc:  # noqa: BLE001 - any failure of a server is reported, never raised
            self._fail(server, _describe(exc, server))
        finally:
            server.session = None
            ready.set()

    async def _watch(self, server: Server, session: Any) -> None:
        """Wait for the stop signal; ping meanwhile so a dead server is noticed."""
        import anyio

        while not server.stop.is_set():
            try:
                await asyncio.wait_for(server.stop.wait(), self.ping_interval)
                return
            except TimeoutError:
                pass
            if server.state != "connected":
                return
            with anyio.fail_after(max(5.0, self.ping_interval)):
                await session.send_ping()

    def _transport(self, server: Server):
        config = server.spec.config
        if isinstance(config, StdioServer):
            from mcp.client.stdio import StdioServerParameters, stdio_client

            command, args = guarded(config.command, config.args)
            cwd = config.cwd or str(self.cwd)
            # Kept open for the server's life (its stderr), closed in close().
            server.stderr = tempfile.TemporaryFile("w+b")  # noqa: SIM115
            env = {**os.environ, **config.env}
            return stdio_client(
                StdioServerParameters(command=command, args=args, env=env, cwd=cwd),
                errlog=server.stderr,
            )
        if isinstance(config, HttpServer):
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            client = create_mcp_http_client(headers=config.headers or None)
            return _owning(client, streamable_http_client(config.url, http_client=client))
        if isinstance(config, SseServer):
            from mcp.client.sse import sse_client

            return sse_client(config.url, headers=config.headers or None)
        if isinstance(config, SdkServer):
            if self.sdk_send is None:
                raise ValueError(
                    "in-process SDK servers need the Claude Agent SDK's control "
                    "protocol (godwit --input-format stream-json)"
                )
            from agent.mcp.bridge import bridged

            return bridged(config.name or server.name, self.sdk_send)
        raise ValueError(f"no transport for {type(config).__name__}")

    def _fail(self, server: Server, message: str) -> None:
        with self._lock:
            if server.state in ("failed", "stopped") or (
                self._closed and server.state != "pending"
            ):
                return
            server.state, server.error, server.tools = "failed", message, []
            if server.reported:
                return
            server.reported = True
            self._reports.append((server.name, message))
        if self.on_failure is not None:
            try:
                self.on_failure(server.name, message)
            except Exception:
                log.exception("the MCP failure callback failed")

    # -- use -------------------------------------------------------------------------------

    def note(self, name: str, message: str) -> None:
        """Report something about a server once (a project server left off, unapproved)."""
        with self._lock:
            self._reports.append((name, message))

    def take_reports(self) -> list[tuple[str, str]]:
        """Failures not yet taken: (server, message), each once."""
        with self._lock:
            out, self._reports = self._reports, []
        return out

    def connected(self) -> list[Server]:
        return [s for s in self.servers.values() if s.state == "connected"]

    def status(self) -> list[dict[str, Any]]:
        """One row per server: name, source, transport, state, error, tools."""
        return [
            {
                "name": s.name,
                "source": s.spec.source,
                "transport": s.spec.config.type if s.spec.config else "?",
                "state": s.state,
                "error": s.error,
                "server": s.server_info,
                "tools": [t.name for t in s.tools],
            }
            for s in self.servers.values()
        ]

    def call(
        self,
        server_name: str,
        tool: str,
        arguments: dict[str, Any],
        cancel: threading.Event | None = None,
    ) -> Any:
        """Call a tool and return the package's CallToolResult. Raises McpCallError when no
        answer came (the server is gone, the time limit passed, or `cancel` was set)."""
        server = self.servers.get(server_name)
        if server is None or server.state != "connected" or server.session is None:
            state = server.error if server and server.error else "not connected"
            raise McpCallError(f"MCP server {server_name!r} is not available ({state}).")
        future = asyncio.run_coroutine_threadsafe(
            server.session.call_tool(tool, arguments, read_timeout_seconds=self.tool_timeout),
            self._loop,
        )
        deadline = time.monotonic() + self.tool_timeout + 1
        while True:
            try:
                return future.result(timeout=0.05)
            except TimeoutError:
                pass
            except Exception as exc:  # noqa: BLE001 - the server's failure becomes the call's error
                if "timed out" in str(exc):
                    raise McpCallError(
                        f"{tool} on MCP server {server_name!r} gave no answer "
                        f"within {self.tool_timeout:.0f} s."
                    ) from None
                self._check_alive(server)
                raise McpCallError(
                    f"MCP server {server_name!r} failed on {tool}: {_describe(exc, server)}"
                ) from None
            if cancel is not None and cancel.is_set():
                future.cancel()
                raise McpCallError(f"{tool} on MCP server {server_name!r} was interrupted.")
            if time.monotonic() > deadline:
                future.cancel()
                raise McpCallError(
                    f"{tool} on MCP server {server_name!r} gave no answer within "
                    f"{self.tool_timeout:.0f} s."
                )

    def _check_alive(self, server: Server) -> None:
        """After a failed call: a server that no longer answers a ping is failed (once)."""
        session = server.session
        if session is None:
            return
        future = asyncio.run_coroutine_threadsafe(session.send_ping(), self._loop)
        try:
            future.result(timeout=5)
        except Exception as exc:  # noqa: BLE001 - no answer: the server is gone
            future.cancel()
            self._fail(server, f"stopped answering ({_describe(exc, server)})")
            if server.stop is not None:
                self._loop.call_soon_threadsafe(server.stop.set)


async def _list_tools(session: Any) -> list[Any]:
    tools, cursor = [], None
    for _ in range(100):  # a server that paginates forever cannot hang the start
        params = None
        if cursor:
            from mcp_types import PaginatedRequestParams

            params = PaginatedRequestParams(cursor=cursor)
        page = await session.list_tools(params=params)
        tools.extend(page.tools)
        cursor = getattr(page, "next_cursor", None)
        if not cursor:
            break
    return tools


class _owning:
    """Enter a transport and close the HTTP client it was given when leaving."""

    def __init__(self, client: Any, transport: Any) -> None:
        self.client, self.transport = client, transport

    async def __aenter__(self):
        await self.client.__aenter__()
        try:
            return await self.transport.__aenter__()
        except BaseException:
            await self.client.__aexit__(None, None, None)
            raise

    async def __aexit__(self, *exc):
        try:
            return await self.transport.__aexit__(*exc)
        finally:
            await self.client.__aexit__(None, None, None)


def _describe(exc: BaseException, server: Server) -> str:
    """One line for the user: the innermost errors of an exception group, and for a stdio
    server that exited, the end of what it wrote on stderr."""
    leaves = list(_leaves(exc))
    text = "; ".join(dict.fromkeys(f"{type(e).__name__}: {e}".rstrip(": ") for e in leaves))
    if any(isinstance(e, TimeoutError) for e in leaves):
        text = "no answer in time" + (f" ({text})" if text != "TimeoutError" else "")
    tail = _stderr_tail(server)
    return text + (f" — stderr: {tail}" if tail else "")


def _leaves(exc: BaseException):
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _stderr_tail(server: Server) -> str:
    f = server.stderr
    if f is None or f.closed:
        return ""
    try:
        size = f.seek(0, 2)
        f.seek(max(0, size - _STDERR_TAIL))
        return " ".join(f.read().decode("utf-8", "replace").split())[-_STDERR_TAIL:]
    except (OSError, ValueError):
        return ""
