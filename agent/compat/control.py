"""Claude Code's stdin/stdout protocol: stream-json input lines and control requests.

Input (one JSON object per line on stdin):
    {"type": "user", "message": {"role": "user", "content": "..." | [blocks]}, ...}
    {"type": "control_request", "request_id": "req_1_ab", "request": {"subtype": ..., ...}}
    {"type": "control_response", "response": {"subtype": "success" | "error",
                                              "request_id": ..., "response": {...} | "error"}}
    {"type": "control_cancel_request", "request_id": ...}
Output: the stream-json messages, plus control responses and Godwit's own control requests
(`can_use_tool`, `hook_callback`, `mcp_message`) in the same shapes.

`ControlChannel` owns both directions: a thread reads stdin (it blocks; the event loop must
not) and hands lines to the loop; `lines()` yields the prompts and requests in order; `request()`
sends a control request and waits for its response; `respond()` answers one. Malformed input
lines are reported once each on stderr and skipped.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import threading
from collections.abc import AsyncIterator
from typing import IO, Any

_EOF = object()


class ControlError(Exception):
    """The other side answered a control request with an error (or never answered)."""


class ControlChannel:
    """Both directions of the protocol over a pair of binary/text streams."""

    def __init__(
        self,
        stdin: IO[bytes] | None = None,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
    ) -> None:
        self.stdin = stdin if stdin is not None else sys.stdin.buffer
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self._queue: asyncio.Queue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[str, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._write_lock = threading.Lock()
        self.closed = False

    # -- output ----------------------------------------------------------------------------

    def write(self, obj: dict[str, Any]) -> None:
        """One JSON line on stdout (thread-safe; a closed pipe ends the output quietly)."""
        text = json.dumps(obj, ensure_ascii=False, default=str) + "\n"
        with self._write_lock:
            try:
                self.stdout.write(text)
                self.stdout.flush()
            except (BrokenPipeError, ValueError):
                self.closed = True

    def respond(
        self, request_id: str, response: dict[str, Any] | None = None, *, error: str | None = None
    ) -> None:
        """Answer a control request: success with `response`, or `error`."""
        body: dict[str, Any] = {"request_id": request_id}
        if error is not None:
            body.update(subtype="error", error=error)
        else:
            body.update(subtype="success", response=response or {})
        self.write({"type": "control_response", "response": body})

    async def request(
        self, subtype: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Send a control request to the SDK and wait for its response."""
        request_id = f"godwit_{next(self._ids)}_{os.urandom(3).hex()}"
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self.write(
            {
                "type": "control_request",
                "request_id": request_id,
                "request": {"subtype": subtype, **payload},
            }
        )
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise ControlError(f"no answer to {subtype} within {timeout:.0f} s") from None
        finally:
            self._pending.pop(request_id, None)

    # -- input -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start reading stdin (call on the event loop that will consume `lines()`)."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        threading.Thread(target=self._read, name="godwit-stdin", daemon=True).start()

    def _read(self) -> None:
        assert self._loop is not None and self._queue is not None
        try:
            for raw in self.stdin:
                line = (
                    raw.decode("utf-8", "replace").strip()
                    if isinstance(raw, bytes)
                    else raw.strip()
                )
                if line:
                    self._loop.call_soon_threadsafe(self._arrive, line)
        except (OSError, ValueError):
            pass
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, _EOF)
        except RuntimeError:  # the loop is already closed: nobody is reading
            pass

    def _arrive(self, line: str) -> None:
        """On the loop: a response resolves its request; anything else is queued."""
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            self.stderr.write(f"godwit: ignored an input line that is not JSON ({exc})\n")
            return
        if not isinstance(obj, dict):
            self.stderr.write("godwit: ignored an input line that is not a JSON object\n")
            return
        if obj.get("type") == "control_response":
            body = obj.get("response") or {}
            future = self._pending.get(str(body.get("request_id")))
            if future is not None and not future.done():
                if body.get("subtype") == "error":
                    future.set_exception(ControlError(str(body.get("error") or "error")))
                else:
                    response = body.get("response")
                    future.set_result(response if isinstance(response, dict) else {})
            return
        assert self._queue is not None
        self._queue.put_nowait(obj)

    async def lines(self) -> AsyncIterator[dict[str, Any]]:
        """Prompts and control requests, in arrival order, until stdin closes."""
        assert self._queue is not None, "call start() first"
        while True:
            item = await self._queue.get()
            if item is _EOF:
                for future in self._pending.values():
                    if not future.done():
                        future.set_exception(ControlError("stdin closed"))
                return
            yield item


def prompt_text(message: dict[str, Any]) -> str:
    """The text of a stream-json user message (content as a string or as blocks)."""
    content = (message.get("message") or {}).get("content")
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content or []:
        if isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif isinstance(block, dict) and block.get("type") == "image":
            parts.append("[an image was attached; this model session cannot show it]")
    return "\n".join(parts)
