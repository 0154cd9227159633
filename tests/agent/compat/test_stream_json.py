"""Godwit events as Claude Code stream-json lines, checked with the Claude Agent SDK's own parser
where it is installed."""

from __future__ import annotations

import io
import json

import pytest

from agent import events as ev
from agent.compat.control import ControlChannel, prompt_text
from agent.compat.stream_json import ClaudeCodeStream
from agent.messages import Message, TextBlock, ThinkingBlock, ToolUseBlock


def _turn(stream: ClaudeCodeStream) -> list[dict]:
    events = [
        ev.UserMessage(text="fix it", turn=1),
        ev.ThinkingDelta(text="hmm"),
        ev.TextDelta(text="Look"),
        ev.TextDelta(text="ing."),
        ev.AssistantMessage(
            message=Message(
                role="assistant",
                content=[
                    ThinkingBlock(thinking="hmm", signature=None),
                    TextBlock(text="Looking."),
                    ToolUseBlock(id="t1", name="bash", input={"command": "ls"}),
                ],
            ),
            stop_reason="tool_use",
            model="claude-x",
            turn=1,
        ),
        ev.Usage(model="claude-x", input_tokens=10, output_tokens=5, cost_usd=0.01),
        ev.ToolCall(id="t1", name="bash", input={"command": "ls"}),
        ev.PermissionDecision(
            tool_use_id="t1", tool="bash", decision="deny", reason="no", source="rule"
        ),
        ev.ToolResult(tool_use_id="t1", name="bash", content="denied", is_error=True),
        ev.AssistantMessage(
            message=Message(role="assistant", content=[TextBlock(text="Done")]),
            stop_reason="end_turn",
            model="claude-x",
            turn=1,
        ),
        ev.Usage(model="claude-x", input_tokens=20, output_tokens=2, cost_usd=0.02),
        ev.TurnEnd(reason="end_turn", turns=2, result="Done"),
    ]
    return [line for e in events for line in stream.feed(e)]


def test_shapes_of_a_turn() -> None:
    stream = ClaudeCodeStream("sess-1", partial=True)
    init = stream.init(
        cwd="/w",
        model="claude-x",
        tools=["bash"],
        permission_mode="default",
        mcp_servers=[{"name": "git", "status": "connected"}],
    )
    assert init["type"] == "system" and init["subtype"] == "init"
    assert init["session_id"] == "sess-1" and init["claude_code_version"] >= "2.0.0"
    lines = _turn(stream)
    kinds = [(l["type"], l.get("event", {}).get("type")) for l in lines]
    assert kinds[:3] == [
        ("stream_event", "message_start"),
        ("stream_event", "content_block_start"),
        ("stream_event", "content_block_delta"),
    ]
    assert ("stream_event", "message_stop") in kinds
    assistant = [l for l in lines if l["type"] == "assistant"]
    assert [b["type"] for b in assistant[0]["message"]["content"]] == [
        "thinking",
        "text",
        "tool_use",
    ]
    assert assistant[0]["message"]["content"][0]["signature"] == ""
    tool_result = next(l for l in lines if l["type"] == "user")
    assert tool_result["message"]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "t1",
        "content": "denied",
        "is_error": True,
    }
    result = lines[-1]
    assert result["type"] == "result" and result["subtype"] == "success"
    assert not result["is_error"] and result["result"] == "Done" and result["num_turns"] == 2
    assert result["usage"]["input_tokens"] == 30 and result["total_cost_usd"] == 0.03
    assert result["permission_denials"] == [
        {"tool_name": "bash", "tool_use_id": "t1", "tool_input": {"command": "ls"}}
    ]
    assert all(l["session_id"] == "sess-1" and l["uuid"] for l in lines)


def test_the_sdk_parses_every_line() -> None:
    parser = pytest.importorskip("claude_agent_sdk._internal.message_parser")
    import claude_agent_sdk as sdk

    stream = ClaudeCodeStream("sess-2", partial=True, replay_user=True)
    lines = [stream.init(cwd="/w", model="m", tools=[], permission_mode="default")]
    lines += stream.user_prompt("fix it", 1)
    lines += _turn(stream)
    parsed = [parser.parse_message(json.loads(json.dumps(l))) for l in lines]
    assert isinstance(parsed[0], sdk.SystemMessage)
    assert isinstance(parsed[1], sdk.UserMessage) and parsed[1].uuid in stream.prompt_uuids
    assert any(isinstance(p, sdk.StreamEvent) for p in parsed)
    assistant = next(p for p in parsed if isinstance(p, sdk.AssistantMessage))
    assert isinstance(assistant.content[2], sdk.ToolUseBlock)
    result = parsed[-1]
    assert isinstance(result, sdk.ResultMessage) and result.result == "Done"
    assert result.session_id == "sess-2"


def test_errors_and_limits_make_error_results() -> None:
    stream = ClaudeCodeStream("s")
    stream.feed(ev.UserMessage(text="x", turn=1))
    stream.feed(ev.Error(message="the API is down", kind="api"))
    result = stream.feed(ev.TurnEnd(reason="error", turns=1))[-1]
    assert result["is_error"] and result["subtype"] == "error_during_execution"
    assert result["errors"] == ["the API is down"]
    stream.feed(ev.UserMessage(text="y", turn=2))
    result = stream.feed(ev.TurnEnd(reason="max_turns", turns=3))[-1]
    assert result["subtype"] == "error_max_turns" and result["errors"] == ["max_turns"]


async def test_control_channel_round_trip() -> None:
    import asyncio
    import os

    r, w = os.pipe()
    out, err = io.StringIO(), io.StringIO()
    channel = ControlChannel(stdin=os.fdopen(r, "rb"), stdout=out, stderr=err)
    channel.start()
    writer = os.fdopen(w, "wb", buffering=0)
    writer.write(b'{"type": "user", "message": {"role": "user", "content": "hi"}}\nnot json\n')
    ask = asyncio.create_task(channel.request("can_use_tool", {"tool_name": "Bash"}, timeout=5))
    await asyncio.sleep(0.05)
    sent = json.loads(out.getvalue().splitlines()[-1])
    assert sent["type"] == "control_request" and sent["request"]["subtype"] == "can_use_tool"
    reply = {
        "type": "control_response",
        "response": {
            "subtype": "success",
            "request_id": sent["request_id"],
            "response": {"behavior": "allow"},
        },
    }
    writer.write((json.dumps(reply) + "\n").encode())
    assert await ask == {"behavior": "allow"}
    writer.close()
    got = [line async for line in channel.lines()]
    assert [prompt_text(g) for g in got] == ["hi"]
    assert "not JSON" in err.getvalue()
    channel.respond("req_1", {"a": 1})
    channel.respond("req_2", error="nope")
    tail = [json.loads(l) for l in out.getvalue().splitlines()[-2:]]
    assert tail[0]["response"] == {
        "request_id": "req_1",
        "subtype": "success",
        "response": {"a": 1},
    }
    assert tail[1]["response"]["error"] == "nope"
