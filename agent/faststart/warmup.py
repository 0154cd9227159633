"""Work every process would do on its first request, done once in the server before it forks.

The SDKs build most of their pydantic models lazily (on the first request and the first parsed
event: over a second on a 2-core machine), and Godwit computes its tools' JSON schemas on first
use. Here one request of each kind the providers send goes through the official SDKs to an
HTTP server on loopback run by this same event loop (nothing leaves the machine, nothing is
written, no thread outlives it), so that every worker inherits the built models and the
transport's imports. Each step is best effort: a failure only costs speed, never serving.
"""

from __future__ import annotations

import json
import os
import pkgutil
import sys
import warnings

PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
# Modules never imported ahead: __main__ modules run on import; the local model pulls in torch.
SKIP = ("__main__", "agent.providers.local", "agent.faststart")


def _sse(events: list[dict]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


MESSAGE = {
    "id": "msg_warm",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-5-5",
    "content": [],
    "stop_reason": None,
    "stop_sequence": None,
    "usage": {
        "input_tokens": 1,
        "output_tokens": 1,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    },
}
ANTHROPIC_STREAM = _sse(
    [
        {"type": "message_start", "message": MESSAGE},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "h"},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "s"},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "ok"}},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "toolu_warm", "name": "bash", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"command": "true"}'},
        },
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 3},
        },
        {"type": "message_stop"},
    ]
)
OPENAI_STREAM = (
    b"".join(
        b"data: " + json.dumps(chunk).encode() + b"\n\n"
        for chunk in [
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": "ok"},
                        "finish_reason": None,
                    }
                ],
            },
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "call_warm",
                                    "type": "function",
                                    "function": {"name": "bash", "arguments": "{}"},
                                }
                            ]
                        },
                        "finish_reason": "tool_calls",
                    }
                ],
            },
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        ]
    )
    + b"data: [DONE]\n\n"
)


def preload_packages(log) -> None:
    """Import every module of agent/, tools/ and checkpoints/ except those in SKIP."""
    import importlib

    for root in ("agent", "tools", "checkpoints"):
        package = importlib.import_module(root)
        for info in pkgutil.walk_packages(package.__path__, root + "."):
            if any(
                info.name == s or info.name.startswith(s + ".") or info.name.endswith("." + s)
                for s in SKIP
            ):
                continue
            try:
                importlib.import_module(info.name)
            except Exception as exc:  # noqa: BLE001 - an optional module may be unimportable
                log(f"preload {info.name}: {type(exc).__name__}: {exc}")


async def _answer(reader, writer) -> None:
    """A loopback HTTP/1.1 answer: the canned stream for the path asked for."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    path = head.split(b" ", 2)[1]
    if path.endswith(b"count_tokens") or b"count_tokens?" in path:
        body, kind = b'{"input_tokens": 1}', b"application/json"
    elif b"/messages" in path:
        body, kind = ANTHROPIC_STREAM, b"text/event-stream"
    else:
        body, kind = OPENAI_STREAM, b"text/event-stream"
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: "
        + kind
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\nconnection: close\r\n\r\n"
        + body
    )
    await writer.drain()
    writer.close()


async def _anthropic(url: str) -> None:
    import anthropic

    client = anthropic.AsyncAnthropic(api_key="warm-up", base_url=url, max_retries=0)
    body = {
        "model": "claude-sonnet-5-5",
        "max_tokens": 64,
        "system": "s",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [
            {"type": "bash_20250124", "name": "bash"},
            {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
            {"name": "glob", "description": "d", "input_schema": {"type": "object"}},
        ],
    }
    events = await client.messages.create(**body, stream=True)
    async with events:
        async for event in events:
            event.to_dict(warnings=False)
    events = await client.beta.messages.create(
        **body, stream=True, betas=["context-management-2025-06-27"]
    )
    async with events:
        async for event in events:
            event.to_dict(warnings=False)
    body.pop("max_tokens")
    await client.messages.count_tokens(**body)
    await client.beta.messages.count_tokens(**body, betas=["context-management-2025-06-27"])
    await client.close()


async def _openai(url: str) -> None:
    import openai

    client = openai.AsyncOpenAI(api_key="warm-up", base_url=url + "/v1", max_retries=0)
    stream = await client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
        tools=[
            {"type": "function", "function": {"name": "bash", "parameters": {"type": "object"}}}
        ],
    )
    async for chunk in stream:
        chunk.model_dump()
    await client.close()


def warm_sdks(log) -> None:
    """One request of each kind through each SDK's default transport, answered on loopback by
    this process itself (asyncio's resolver threads are joined when asyncio.run returns)."""
    import asyncio

    async def run() -> None:
        server = await asyncio.start_server(_answer, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        async with server:
            for name, step in (("anthropic", _anthropic), ("openai", _openai)):
                try:
                    await asyncio.wait_for(step(url), 60)
                except Exception as exc:  # noqa: BLE001 - only speed is at stake
                    log(f"warm-up {name}: {type(exc).__name__}: {exc}")

    env = {k: os.environ.pop(k) for k in PROXY_ENV if k in os.environ}  # loopback, directly
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            asyncio.run(run())
    finally:
        os.environ.update(env)


def warm_tools(log) -> None:
    """The tools' JSON schemas, which are computed once per process."""
    try:
        import tools

        for tool in tools.default_tools(None):
            tool.anthropic_spec()
            tool.openai_spec()
    except Exception as exc:  # noqa: BLE001
        log(f"warm-up tools: {type(exc).__name__}: {exc}")


def warm(log) -> None:
    """Everything above; the caller checks that no thread was left running."""
    preload_packages(log)
    warm_sdks(log)
    warm_tools(log)
    if "torch" in sys.modules:
        log("warning: torch was imported while warming up")
