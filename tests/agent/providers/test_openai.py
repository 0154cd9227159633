"""The OpenAI-compatible provider: streamed and whole replies, tool calls by index, reasoning."""

from __future__ import annotations

import json

import pytest

from agent.events import TextDelta
from agent.messages import Message, TextBlock, ThinkingBlock, ToolResultBlock, ToolUseBlock
from agent.providers.openai_compat import OpenAICompatProvider
from tests.agent.providers.helpers import FAST, collect, final, godwit_tools, request, thinking_text
from tests.fakes.replies import Reply, Text, Thinking, ToolUse, Usage, calls, say


async def test_streamed_text_usage_and_request(gpt, llm_server):
    llm_server.push(
        say(
            "Hello from the fake",
            usage=Usage(input_tokens=70, output_tokens=9, cache_read_input_tokens=30),
        )
    )
    items = await collect(gpt, request(system="Be brief."))
    resp = final(items)
    assert "".join(i.text for i in items if isinstance(i, TextDelta)) == "Hello from the fake"
    assert resp.message.content == [TextBlock(text="Hello from the fake")]
    assert resp.stop_reason == "end_turn"
    # prompt_tokens (100) minus the cached 30 are fresh input; the cached ones are cache reads.
    assert (
        resp.usage.input_tokens,
        resp.usage.cache_read_input_tokens,
        resp.usage.output_tokens,
    ) == (70, 30, 9)
    sent = llm_server.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.body["stream"] is True and sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent.headers["authorization"] == "Bearer test-key"


@pytest.mark.parametrize("interleave", [False, True])
async def test_parallel_tool_calls_assembled_by_index(gpt, llm_server, interleave):
    first = ToolUse("glob", {"pattern": "src/**/*.py"}, id="call_a")
    second = ToolUse("grep", {"pattern": "def main", "path": "src"}, id="call_b")
    llm_server.push(
        calls(first, second, text="Looking.", json_chunk=4, interleave_tool_calls=interleave)
    )
    resp = final(await collect(gpt, request(tools=godwit_tools())))
    assert resp.message.content == [
        TextBlock(text="Looking."),
        ToolUseBlock(id="call_a", name="glob", input={"pattern": "src/**/*.py"}),
        ToolUseBlock(id="call_b", name="grep", input={"pattern": "def main", "path": "src"}),
    ]
    assert resp.stop_reason == "tool_use"
    tools = llm_server.requests[-1].body["tools"]
    assert [t["function"]["name"] for t in tools] == [
        "str_replace_based_edit_tool",
        "bash",
        "memory",
        "glob",
        "grep",
    ]
    assert all(t["type"] == "function" for t in tools)


async def test_invalid_tool_arguments_become_input_error(gpt, llm_server):
    llm_server.push(calls(ToolUse("bash", raw_json='{"command": "ls", }')))
    tool = final(await collect(gpt, request())).message.tool_uses()[0]
    assert tool.input == {} and '{"command": "ls", }' in tool.input_error


async def test_reasoning_content_kept_as_thinking(gpt, llm_server):
    llm_server.push(
        Reply(blocks=[Thinking("First, consider the file.", signature=""), Text("Done.")])
    )
    items = await collect(gpt, request())
    resp = final(items)
    assert thinking_text(items) == "First, consider the file."
    assert resp.message.content[0] == ThinkingBlock(
        thinking="First, consider the file.", signature=None
    )
    assert resp.message.text() == "Done."


def _multi_turn() -> list[Message]:
    return [
        Message.user("List and search."),
        Message(
            role="assistant",
            content=[
                ThinkingBlock(thinking="plan"),
                TextBlock(text="Two lookups."),
                ToolUseBlock(id="c1", name="glob", input={"pattern": "*.py"}),
                ToolUseBlock(id="c2", name="grep", input={"pattern": "x"}),
            ],
        ),
        Message(
            role="user",
            content=[
                ToolResultBlock(tool_use_id="c1", content="a.py"),
                ToolResultBlock(tool_use_id="c2", content="no such dir", is_error=True),
                TextBlock(text="Also check b."),
            ],
        ),
    ]


async def test_multi_turn_conversion(gpt, llm_server):
    llm_server.push(say("ok"))
    await collect(gpt, request(*_multi_turn(), system="S"))
    sent = llm_server.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "tool", "user"]
    assistant = sent[2]
    assert assistant["content"] == "Two lookups."
    assert "reasoning_content" not in assistant  # default: DeepSeek wants earlier reasoning dropped
    assert [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in assistant["tool_calls"]
    ] == [
        ("c1", "glob", {"pattern": "*.py"}),
        ("c2", "grep", {"pattern": "x"}),
    ]
    assert sent[3] == {"role": "tool", "tool_call_id": "c1", "content": "a.py"}
    assert sent[4]["tool_call_id"] == "c2" and "no such dir" in sent[4]["content"]
    assert sent[5] == {"role": "user", "content": "Also check b."}


async def test_reasoning_sent_back_when_asked(llm_server):
    provider = OpenAICompatProvider(
        "deepseek-reasoner",
        api_key="k",
        base_url=llm_server.openai_url,
        retry=FAST,
        send_reasoning=True,
    )
    llm_server.push(say("ok"))
    await collect(provider, request(*_multi_turn()))
    assert llm_server.requests[-1].body["messages"][2]["reasoning_content"] == "plan"


async def test_not_streamed(llm_server):
    provider = OpenAICompatProvider(
        "deepseek-chat", api_key="k", base_url=llm_server.openai_url, retry=FAST, stream=False
    )
    llm_server.push(
        Reply(
            blocks=[
                Thinking("hmm", signature=""),
                Text("Whole."),
                ToolUse("bash", {"command": "pwd"}, id="c9"),
            ],
            usage=Usage(input_tokens=5, output_tokens=3),
        ),
    )
    items = await collect(provider, request())
    resp = final(items)
    assert "stream" not in llm_server.requests[-1].body
    assert resp.message.content == [
        ThinkingBlock(thinking="hmm"),
        TextBlock(text="Whole."),
        ToolUseBlock(id="c9", name="bash", input={"command": "pwd"}),
    ]
    assert resp.stop_reason == "tool_use" and resp.usage.output_tokens == 3
    assert thinking_text(items) == "hmm"


async def test_not_streamed_retries_too(llm_server):
    from tests.fakes.replies import http_error

    provider = OpenAICompatProvider(
        "m", api_key="k", base_url=llm_server.openai_url, retry=FAST, stream=False
    )
    llm_server.push(http_error(503), say("fine"))
    assert final(await collect(provider, request())).message.text() == "fine"


@pytest.mark.parametrize(
    "reason,expected",
    [
        ("end_turn", "end_turn"),
        ("max_tokens", "max_tokens"),
        ("refusal", "refusal"),
        ("tool_use", "tool_use"),
    ],
)
async def test_finish_reason_mapping(gpt, llm_server, reason, expected):
    # The fake sends stop, length, content_filter and tool_calls for these.
    llm_server.push(say("x", stop_reason=reason))
    assert final(await collect(gpt, request())).stop_reason == expected


async def test_base_url_from_environment(llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", llm_server.openai_url)
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    provider = OpenAICompatProvider("deepseek-chat", retry=FAST)
    llm_server.push(say("via env"))
    assert final(await collect(provider, request())).message.text() == "via env"
    assert llm_server.requests[-1].headers["authorization"] == "Bearer env-key"


async def test_local_server_needs_no_key(llm_server):
    provider = OpenAICompatProvider("Qwen/Qwen3-8B", base_url=llm_server.openai_url, retry=FAST)
    llm_server.push(say("served"))
    assert final(await collect(provider, request())).message.text() == "served"
    assert provider.context_window == 128_000


async def test_thinking_budget_and_context_management_not_sent(gpt, llm_server):
    llm_server.push(say("ok"))
    await collect(gpt, request(thinking_budget=5000, context_management={"edits": []}))
    body = llm_server.requests[-1].body
    assert "thinking" not in body and "context_management" not in body
    assert body["max_tokens"] <= 8000


async def test_max_completion_tokens_option(llm_server):
    provider = OpenAICompatProvider(
        "gpt-5",
        api_key="k",
        base_url=llm_server.openai_url,
        retry=FAST,
        max_tokens_param="max_completion_tokens",
    )
    llm_server.push(say("ok"))
    await collect(provider, request(max_tokens=1234))
    body = llm_server.requests[-1].body
    assert body["max_completion_tokens"] == 1234 and "max_tokens" not in body


async def test_count_tokens_is_none_and_cost(gpt):
    from agent.providers.base import TokenUsage

    assert await gpt.count_tokens(request()) is None
    assert gpt.cost(TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)) == pytest.approx(
        0.28 + 0.42
    )
