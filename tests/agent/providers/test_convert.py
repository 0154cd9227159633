"""Conversion helpers without a network: tool input parsing, cache breakpoints, usage."""

from __future__ import annotations

from agent.messages import Message, TextBlock, ThinkingBlock, ToolResultBlock, ToolUseBlock
from agent.providers import convert


def test_parse_tool_input():
    assert convert.parse_tool_input('{"a": 1}') == ({"a": 1}, None)
    assert convert.parse_tool_input("") == ({}, None)
    value, error = convert.parse_tool_input('{"a": 1')
    assert value == {} and '{"a": 1' in error
    value, error = convert.parse_tool_input("[1, 2]")
    assert value == {} and "must be a JSON object" in error


def _messages(n_user: int) -> list[dict]:
    out = []
    for i in range(n_user):
        out.append({"role": "user", "content": [{"type": "text", "text": f"u{i}"}]})
        out.append({"role": "assistant", "content": [{"type": "text", "text": f"a{i}"}]})
    return out[:-1]


def test_breakpoints_without_tools_or_history():
    system = [{"type": "text", "text": "s"}]
    messages = _messages(1)
    assert convert.place_cache_breakpoints(system, [], messages) == 2
    assert "cache_control" in system[0] and "cache_control" in messages[0]["content"][0]


def test_breakpoints_full_set_and_tool_list_not_mutated():
    system = [{"type": "text", "text": "s"}]
    tool = {"name": "glob", "input_schema": {"type": "object"}}
    tools = [tool]
    messages = _messages(3)
    assert convert.place_cache_breakpoints(system, tools, messages) == 4
    assert "cache_control" in tools[0] and "cache_control" not in tool  # caller's spec untouched
    marked = [i for i, m in enumerate(messages) if "cache_control" in m["content"][-1]]
    assert marked == [2, 4]


def test_breakpoint_on_empty_system_is_skipped():
    messages = _messages(2)
    assert convert.place_cache_breakpoints([], [], messages) == 2


def test_anthropic_messages_drop_what_cannot_go_back():
    messages = [
        Message(role="user", content=[TextBlock(text="")]),
        Message(
            role="assistant",
            content=[
                ThinkingBlock(thinking="unsigned"),
                ToolUseBlock(id="t", name="n", input={}, input_error="bad"),
            ],
        ),
    ]
    out = convert.anthropic_messages(messages)
    assert out[0]["content"] == [{"type": "text", "text": "(empty)"}]
    assert out[1]["content"] == [{"type": "tool_use", "id": "t", "name": "n", "input": {}}]


def test_openai_messages_tool_results_before_text_and_error_marked():
    messages = [
        Message(
            role="assistant", content=[ToolUseBlock(id="c", name="bash", input={"command": "x"})]
        ),
        Message(
            role="user",
            content=[
                TextBlock(text="note"),
                ToolResultBlock(tool_use_id="c", content="boom", is_error=True),
            ],
        ),
    ]
    out = convert.openai_messages("", messages)
    assert [m["role"] for m in out] == ["assistant", "tool", "user"]
    assert (
        out[0]["content"] is None
        and out[0]["tool_calls"][0]["function"]["arguments"] == '{"command": "x"}'
    )
    assert out[1]["content"] == "Error: boom"


def test_openai_assistant_without_anything_has_empty_content():
    out = convert.openai_messages("", [Message(role="assistant", content=[])])
    assert out == [{"role": "assistant", "content": ""}]


def test_usage_conversions():
    u = convert.anthropic_usage(
        {"input_tokens": 5, "output_tokens": None, "cache_read_input_tokens": 7}
    )
    assert (
        u.input_tokens,
        u.output_tokens,
        u.cache_read_input_tokens,
        u.cache_creation_input_tokens,
    ) == (5, 0, 7, 0)
    o = convert.openai_usage(
        {
            "prompt_tokens": 100,
            "completion_tokens": 4,
            "prompt_tokens_details": {"cached_tokens": 64},
        }
    )
    assert (o.input_tokens, o.cache_read_input_tokens, o.output_tokens) == (36, 64, 4)
    assert convert.openai_usage(None).input_tokens == 0
