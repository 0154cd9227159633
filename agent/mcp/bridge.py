"""A transport for MCP servers that live inside a Claude Agent SDK program (`type: "sdk"`).

The SDK passes such a server as `{"type": "sdk", "name": NAME}` in `--mcp-config` and serves it
itself: each JSON-RPC message goes to the SDK in an `mcp_message` control request, and the
control response carries the server's JSON-RPC answer. `bridged` makes that look like any other
transport to the `mcp` package (a pair of memory streams); `send` is the coroutine that makes
the control request (it runs on the protocol's own event loop, hence the hand-over).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

Send = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any] | None]]


@asynccontextmanager
async def bridged(name: str, send: Send):
    """(read_stream, write_stream) for the `mcp` package's ClientSession."""
    import anyio
    import mcp_types
    from mcp.shared.message import SessionMessage

    read_writer, read_stream = anyio.create_memory_object_stream(16)
    write_stream, write_reader = anyio.create_memory_object_stream(16)

    async def forward(message: dict[str, Any]) -> None:
        try:
            answer = await send(name, message)
        except Exception as exc:  # noqa: BLE001 - the SDK failing is the transport failing
            await read_writer.send(exc)
            return
        if "id" not in message or not isinstance(answer, dict):
            return  # a notification: the SDK only acknowledges it
        try:
            parsed = mcp_types.jsonrpc_message_adapter.validate_python(answer)
        except ValueError as exc:
            await read_writer.send(exc)
            return
        await read_writer.send(SessionMessage(parsed))

    async def pump() -> None:
        async with anyio.create_task_group() as tg:
            async for item in write_reader:
                data = item.message.model_dump(by_alias=True, exclude_unset=True, mode="json")
                tg.start_soon(forward, data)

    async with (
        read_writer,
        read_stream,
        write_stream,
        write_reader,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(pump)
        try:
            yield read_stream, write_stream
        finally:
            tg.cancel_scope.cancel()


def cross_loop(send: Send, loop: asyncio.AbstractEventLoop) -> Send:
    """`send` (a coroutine of `loop`) made callable from another event loop."""

    async def call(name: str, message: dict[str, Any]) -> dict[str, Any] | None:
        future = asyncio.run_coroutine_threadsafe(send(name, message), loop)
        return await asyncio.wrap_future(future)

    return call
