"""What the Anthropic provider sends: tools, cache breakpoints, thinking, context management."""

from __future__ import annotations

import pytest

from agent.messages import (
    Message,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from agent.providers.anthropic import AnthropicProvider
from tests.agent.providers.helpers import (
    FAST,
    collect,
    final,
    godwit_tools,
    request,
    thinking_text,
)
from tests.fakes.replies import call, say, think_then_say


def _breakpoints(body: dict) -> list[str]:
    """Where cache_control sits in a request body, as readable paths."""
    found = []
    for i, block in enumerate(body.get("system", [])):
        if "cache_control" in block:
            found.append(f"system[{i}]")
    for i, tool in enumerate(body.get("tools", [])):
        if "cache_control" in tool:
            found.append(f"tools[{i}]")
    for m, message in enumerate(body["messages"]):
        for b, block in enumerate(message["content"]):
            if "cache_control" in block:
                found.append(f"messages[{m}][{b}]")
    return found


def _unmarked(messages: list[dict]) -> list[dict]:
    return [
        {
            **m,
            "content": [{k: v for k, v in b.items() if k != "cache_control"} for b in m["content"]],
        }
        for m in messages
    ]


def _agentic_history(turns: int) -> list[Message]:
    """A user prompt then `turns` rounds of tool call + tool result (what a long session sends)."""
    history = [Message.user("Fix the bug.")]
    for n in range(turns):
        history.append(
            Message(
                role="assistant",
                content=[
                    TextBlock(text=f"step {n}"),
                    ToolUseBlock(id=f"t{n}", name="bash", input={"command": "ls"}),
                ],
            )
        )
        history.append(
            Message(role="user", content=[ToolResultBlock(tool_use_id=f"t{n}", content=f"out {n}")])
        )
    return history


async def test_tools_sent_with_builtin_types(claude, llm_server):
    llm_server.push(say("ok"))
    await collect(claude, request(tools=godwit_tools()))
    tools = llm_server.requests[-1].body["tools"]
    assert [t["name"] for t in tools] == [
        "str_replace_based_edit_tool",
        "bash",
        "memory",
        "glob",
        "grep",
    ]
    assert [t.get("type") for t in tools[:3]] == [
        "text_editor_20250728",
        "bash_20250124",
        "memory_20250818",
    ]
    # glob and grep are ordinary (custom) tools with a JSON schema.
    assert tools[3]["input_schema"]["type"] == "object" and "type" not in tools[3]


async def test_cache_breakpoints_on_system_last_tool_and_moving_end(claude, llm_server):
    llm_server.push(say("ok"))
    await collect(claude, request(*_agentic_history(3), tools=godwit_tools()))
    body = llm_server.requests[-1].body
    # system, last tool, last message (tool result of round 3), previous user turn (round 2).
    assert _breakpoints(body) == ["system[0]", "tools[4]", "messages[4][0]", "messages[6][0]"]
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}


async def test_previous_moving_end_is_this_calls_cache_read(claude, llm_server):
    """The breakpoint written on call n is still there on call n+1: the prefix is a cache hit."""
    llm_server.push(say("a"), say("b"))
    history = _agentic_history(2)
    await collect(claude, request(*history, tools=godwit_tools()))
    await collect(claude, request(*_agentic_history(3), tools=godwit_tools()))
    first, second = (r.body for r in llm_server.model_requests)
    last_of_first = len(first["messages"]) - 1
    assert f"messages[{last_of_first}][0]" in _breakpoints(first)
    assert f"messages[{last_of_first}][0]" in _breakpoints(second)
    # ... and what precedes it is identical apart from the markers (which are not content).
    assert _unmarked(first["messages"][: last_of_first + 1]) == _unmarked(
        second["messages"][: last_of_first + 1]
    )


@pytest.mark.parametrize("turns", [0, 1, 5])
async def test_never_more_than_four_breakpoints(claude, llm_server, turns):
    llm_server.push(say("ok"))
    await collect(claude, request(*_agentic_history(turns), tools=godwit_tools()))
    marks = _breakpoints(llm_server.requests[-1].body)
    assert 1 <= len(marks) <= 4
    assert "system[0]" in marks


async def test_breakpoint_skips_thinking_blocks(claude, llm_server):
    llm_server.push(say("ok"))
    prefill = Message(
        role="assistant", content=[TextBlock(text="x"), ThinkingBlock(thinking="t", signature="s")]
    )
    await collect(claude, request(Message.user("q"), prefill))
    last = llm_server.requests[-1].body["messages"][-1]["content"]
    assert "cache_control" in last[0] and "cache_control" not in last[1]


async def test_thinking_budget_on_enabled_model(sonnet45, llm_server):
    llm_server.push(say("ok"))
    await collect(sonnet45, request(thinking_budget=20_000, max_tokens=8_000))
    body = llm_server.requests[-1].body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 20_000}
    assert body["max_tokens"] > body["thinking"]["budget_tokens"]


async def test_thinking_budget_below_max_tokens_kept(sonnet45, llm_server):
    llm_server.push(say("ok"))
    await collect(sonnet45, request(thinking_budget=4_000, max_tokens=16_000))
    body = llm_server.requests[-1].body
    assert body["thinking"]["budget_tokens"] == 4_000 and body["max_tokens"] == 16_000


async def test_adaptive_thinking_on_newer_model(claude, llm_server):
    llm_server.push(say("ok"))
    await collect(claude, request(thinking_budget=8_000))
    assert llm_server.requests[-1].body["thinking"] == {"type": "adaptive"}


async def test_no_thinking_field_without_budget(claude, llm_server):
    llm_server.push(say("ok"))
    await collect(claude, request())
    assert "thinking" not in llm_server.requests[-1].body


async def test_thinking_streams_and_signature_goes_back_unchanged(sonnet45, llm_server):
    signature = "EqQBCkYIARgCIkB+opaque/sig=="
    llm_server.push(think_then_say("Let me think.", "Answer.", signature=signature), say("ok"))
    items = await collect(sonnet45, request(thinking_budget=2_000))
    assert thinking_text(items) == "Let me think."
    first = final(items)
    assert first.message.content == [
        ThinkingBlock(thinking="Let me think.", signature=signature),
        TextBlock(text="Answer."),
    ]
    redacted = RedactedThinkingBlock(data="ENCRYPTED==")
    replayed = Message(role="assistant", content=[*first.message.content, redacted])
    await collect(
        sonnet45, request(Message.user("hi"), replayed, Message.user("more"), thinking_budget=2_000)
    )
    sent = llm_server.requests[-1].body["messages"][1]["content"]
    assert sent[0] == {"type": "thinking", "thinking": "Let me think.", "signature": signature}
    assert sent[2]["type"] == "redacted_thinking" and sent[2]["data"] == "ENCRYPTED=="


async def test_unsigned_thinking_from_another_provider_is_not_sent(claude, llm_server):
    llm_server.push(say("ok"))
    foreign = Message(
        role="assistant", content=[ThinkingBlock(thinking="r1 reasoning"), TextBlock(text="hi")]
    )
    await collect(claude, request(Message.user("a"), foreign, Message.user("b")))
    assert [b["type"] for b in llm_server.requests[-1].body["messages"][1]["content"]] == ["text"]


async def test_context_management_body_and_beta_header(claude, llm_server):
    config = {
        "edits": [
            {
                "type": "clear_tool_uses_20250919",
                "trigger": {"type": "input_tokens", "value": 100000},
            }
        ]
    }
    llm_server.push(
        say(
            "ok",
            applied_edits=[
                {
                    "type": "clear_tool_uses_20250919",
                    "cleared_tool_uses": 3,
                    "cleared_input_tokens": 900,
                }
            ],
        )
    )
    resp = final(await collect(claude, request(context_management=config)))
    sent = llm_server.requests[-1]
    assert sent.body["context_management"] == config
    assert "context-management-2025-06-27" in sent.headers["anthropic-beta"]
    assert resp.applied_edits[0]["cleared_tool_uses"] == 3


async def test_no_beta_header_without_context_management(claude, llm_server):
    llm_server.push(say("ok"))
    await collect(claude, request())
    assert "anthropic-beta" not in llm_server.requests[-1].headers
    assert "context_management" not in llm_server.requests[-1].body


async def test_tool_results_and_errors_sent_back(claude, llm_server):
    llm_server.push(say("ok"))
    history = [
        Message.user("go"),
        Message(
            role="assistant",
            content=[ToolUseBlock(id="t1", name="bash", input={"command": "false"})],
        ),
        Message(
            role="user",
            content=[ToolResultBlock(tool_use_id="t1", content="exit 1", is_error=True)],
        ),
    ]
    await collect(claude, request(*history))
    body = llm_server.requests[-1].body
    assert body["messages"][1]["content"][0] == {
        "type": "tool_use",
        "id": "t1",
        "name": "bash",
        "input": {"command": "false"},
    }
    result = body["messages"][2]["content"][0]
    assert (
        result["tool_use_id"] == "t1"
        and result["is_error"] is True
        and result["content"] == "exit 1"
    )


async def test_stop_reasons_pass_through(claude, llm_server):
    reasons = [
        "end_turn",
        "max_tokens",
        "refusal",
        "pause_turn",
        "model_context_window_exceeded",
        "stop_sequence",
    ]
    for reason in reasons:
        llm_server.push(say("x", stop_reason=reason))
    got = [final(await collect(claude, request())).stop_reason for _ in reasons]
    assert got == reasons


async def test_tool_call_round_trip_with_split_input(claude, llm_server):
    args = {
        "command": "grep -rn 'def main' src/ | head -n 20",
        "timeout": 30,
        "nested": {"a": [1, 2, {"b": "c"}]},
    }
    for chunk in (1, 3, 7):
        llm_server.push(call("bash", args, text="Searching.", json_chunk=chunk))
    for _ in range(3):
        resp = final(await collect(claude, request()))
        assert resp.message.tool_uses()[0].input == args
        assert resp.stop_reason == "tool_use"


async def test_usage_and_cost(sonnet45, llm_server):
    from tests.fakes.replies import Usage

    llm_server.push(
        say(
            "ok",
            usage=Usage(
                input_tokens=1000,
                output_tokens=200,
                cache_read_input_tokens=50_000,
                cache_creation_input_tokens=4000,
            ),
        )
    )
    resp = final(await collect(sonnet45, request()))
    assert resp.usage.cache_read_input_tokens == 50_000
    assert resp.usage.cache_creation_input_tokens == 4000
    # $3 in, $15 out, $3.75 cache write, $0.30 cache read per million.
    expected = (1000 * 3 + 200 * 15 + 4000 * 3.75 + 50_000 * 0.30) / 1e6
    assert sonnet45.cost(resp.usage) == pytest.approx(expected)


async def test_count_tokens(claude, llm_server):
    llm_server.push_count(4321)
    assert await claude.count_tokens(request(tools=godwit_tools())) == 4321
    sent = llm_server.requests[-1]
    assert sent.path == "/v1/messages/count_tokens"
    assert "max_tokens" not in sent.body and len(sent.body["tools"]) == 5


async def test_count_tokens_failure_is_none(claude, llm_server):
    from tests.fakes.replies import http_error

    llm_server.push_count(http_error(500))
    assert await claude.count_tokens(request()) is None


async def test_model_from_constructor_is_sent(llm_server):
    provider = AnthropicProvider(
        "claude-opus-4-7", api_key="k", base_url=llm_server.url, retry=FAST
    )
    llm_server.push(say("ok"))
    await collect(provider, request())
    assert llm_server.requests[-1].body["model"] == "claude-opus-4-7"
    assert llm_server.requests[-1].body["stream"] is True


async def test_real_tool_specs_when_available(claude, gpt, llm_server, tmp_path):
    """The tools package's own specs go out unchanged (stand-ins above cover it being absent)."""
    try:
        from tools import default_tools
    except ImportError:
        pytest.skip("tools package not importable yet")
    tools = default_tools(tmp_path / "memories")
    llm_server.push(say("ok"), say("ok"))
    await collect(claude, request(tools=tools))
    await collect(gpt, request(tools=tools))
    anthropic_body, openai_body = (r.body for r in llm_server.model_requests)
    types = {t["name"]: t.get("type") for t in anthropic_body["tools"]}
    assert types["str_replace_based_edit_tool"] == "text_editor_20250728"
    assert types["bash"] == "bash_20250124" and types["memory"] == "memory_20250818"
    assert types["glob"] is None and types["grep"] is None
    assert sorted(t["function"]["name"] for t in openai_body["tools"]) == sorted(types)


async def test_count_tokens_with_context_management_uses_the_beta(claude, llm_server):
    llm_server.push_count(99)
    config = {"edits": [{"type": "clear_tool_uses_20250919"}]}
    assert await claude.count_tokens(request(context_management=config)) == 99
    sent = llm_server.requests[-1]
    assert sent.body["context_management"] == config
    assert "context-management-2025-06-27" in sent.headers["anthropic-beta"]
