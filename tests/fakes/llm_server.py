"""A real HTTP server on 127.0.0.1 speaking Anthropic's Messages API and OpenAI Chat Completions.

The runtime's tests point the official SDKs at it by base URL. It replays a queue of scripted
replies (see `tests.fakes.replies`), injects the faults each reply asks for, and logs every
request so that a test can assert what was sent:

    server = FakeLLMServer().start()
    server.push(say("Hello"))
    ...  # AsyncAnthropic(base_url=server.url) / AsyncOpenAI(base_url=server.openai_url)
    assert server.requests[-1].body["model"] == "claude-sonnet-4-5"
    server.stop()

Any auth header is accepted and unknown headers are ignored. Streams use chunked transfer
encoding, so `drop_after` (closing the socket mid-body) looks to the client like a real dropped
connection, while `truncate_after` ends the body cleanly but early.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit

from tests.fakes import render
from tests.fakes.replies import Reply, http_error

ANTHROPIC_PATHS = {"/v1/messages"}
COUNT_PATHS = {"/v1/messages/count_tokens"}
OPENAI_PATHS = {"/v1/chat/completions", "/chat/completions"}


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    query: str
    # Lower-cased names.
    headers: dict[str, str]
    # The parsed JSON body (None when the body was empty).
    body: Any
    received_at: float = field(default_factory=time.monotonic)


class _Stop(Exception):
    """The scripted fault ended the response."""


class FakeLLMServer:
    """The fake service. `url` is the Anthropic base URL, `openai_url` the OpenAI one."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._queue: collections.deque[Reply] = collections.deque()
        self._counts: collections.deque[int | Reply] = collections.deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.requests: list[RecordedRequest] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        """Listen on a free port in a background thread."""
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer((self._host, 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (streams still being written are abandoned)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """Base URL for the Anthropic SDK (it appends /v1/messages)."""
        return f"http://{self._host}:{self.port}"

    @property
    def openai_url(self) -> str:
        """Base URL for the OpenAI SDK (it appends /chat/completions)."""
        return f"{self.url}/v1"

    # --- script ----------------------------------------------------------------------------

    def push(self, *replies: Reply) -> FakeLLMServer:
        """Queue replies; each request to a model endpoint consumes the next one."""
        with self._lock:
            self._queue.extend(replies)
        return self

    def script(self, *replies: Reply) -> FakeLLMServer:
        """Replace the queue with these replies."""
        with self._lock:
            self._queue.clear()
            self._queue.extend(replies)
        return self

    def push_count(self, *answers: int | Reply) -> FakeLLMServer:
        """Queue answers for count_tokens: a token count, or a Reply fault (e.g. http_error(500)).

        Without one, count_tokens answers len(request JSON) // 4."""
        with self._lock:
            self._counts.extend(answers)
        return self

    @property
    def pending(self) -> int:
        """Scripted replies not consumed yet."""
        with self._lock:
            return len(self._queue)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    @property
    def model_requests(self) -> list[RecordedRequest]:
        """Requests to /v1/messages or chat/completions (not count_tokens)."""
        return [r for r in self.requests if r.path in ANTHROPIC_PATHS | OPENAI_PATHS]

    # --- used by the handler ---------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        # A clear, non-retryable answer so a test with too short a script fails fast.
        return http_error(400, message=f"fake LLM server: no scripted reply left for POST {path}")

    def _next_count(self) -> int | Reply | None:
        with self._lock:
            return self._counts.popleft() if self._counts else None

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeLLMServer  # set on the subclass made by FakeLLMServer.start

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_GET(self) -> None:
        self._send_json(
            404, {"type": "error", "error": {"type": "not_found_error", "message": "not here"}}
        )

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.fake._record(RecordedRequest("POST", parts.path, parts.query, headers, body))
        try:
            if parts.path in COUNT_PATHS:
                self._count_tokens(raw)
            elif parts.path in ANTHROPIC_PATHS:
                self._model_call(body or {}, parts.path, openai=False)
            elif parts.path in OPENAI_PATHS:
                self._model_call(body or {}, parts.path, openai=True)
            else:
                self._send_json(
                    404,
                    {
                        "type": "error",
                        "error": {"type": "not_found_error", "message": f"no route {parts.path}"},
                    },
                )
        except (_Stop, BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # --- endpoints -------------------------------------------------------------------------

    def _count_tokens(self, raw: bytes) -> None:
        answer = self.fake._next_count()
        if isinstance(answer, Reply):
            self._send_error_reply(answer, openai=False)
            return
        tokens = answer if answer is not None else max(1, len(raw) // 4)
        self._send_json(200, {"input_tokens": tokens})

    def _model_call(self, body: dict[str, Any], path: str, *, openai: bool) -> None:
        reply = self.fake._next_reply(path)
        if reply.usage.input_tokens is None:
            counted = max(1, len(json.dumps(body)) // 4)
            reply = dataclasses.replace(
                reply, usage=dataclasses.replace(reply.usage, input_tokens=counted)
            )
        if reply.status != 200:
            self._send_error_reply(reply, openai=openai)
            return
        model = reply.model or str(body.get("model", "fake-model"))
        if not body.get("stream"):
            if reply.raw_json is not None:
                self._send_json(200, reply.raw_json)
            elif openai:
                self._send_json(
                    200, render.openai_json(reply, model, self.fake._new_id("chatcmpl-fake"))
                )
            else:
                self._send_json(
                    200, render.anthropic_json(reply, model, self.fake._new_id("msg_fake_"))
                )
            return
        if reply.raw_sse is not None:
            # Recorded bodies are replayed event by event so that faults still apply.
            chunks = [c.strip("\n") + "\n\n" for c in reply.raw_sse.split("\n\n") if c.strip()]
            wire = [c.encode() for c in chunks]
        elif openai:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = render.openai_events(
                reply, model, self.fake._new_id("chatcmpl-fake"), include_usage
            )
            wire = [render.encode_event(n, d) for n, d in events]
        else:
            events = render.anthropic_events(reply, model, self.fake._new_id("msg_fake_"))
            wire = [render.encode_event(n, d) for n, d in events]
        self._stream(wire, reply, openai=openai)

    # --- writing ---------------------------------------------------------------------------

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", self.fake._new_id("req_fake_"))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_error_reply(self, reply: Reply, *, openai: bool) -> None:
        payload = render.openai_error_body(reply) if openai else reply.error_body()
        self._send_json(reply.status, payload, reply.headers)

    def _stream(self, wire: list[bytes], reply: Reply, *, openai: bool) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", self.fake._new_id("req_fake_"))
        self.end_headers()
        for count, piece in enumerate(wire):
            if reply.drop_after is not None and count >= reply.drop_after:
                self._drop()
            if reply.truncate_after is not None and count >= reply.truncate_after:
                break
            if reply.error_event_after is not None and count >= reply.error_event_after:
                event = (
                    render.openai_error_event(reply)
                    if openai
                    else render.anthropic_error_event(reply)
                )
                self._write_chunk(render.encode_event(*event))
                break
            if reply.event_delay_s:
                time.sleep(reply.event_delay_s)
            self._write_chunk(piece)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _drop(self) -> None:
        """Close the socket without finishing the chunked body: a dropped connection."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise _Stop()
