"""Compaction and context editing through the real providers, the official SDKs and HTTP on
127.0.0.1 (the fake LLM server of tests/fakes)."""

import pytest

from agent.context.compaction import SUMMARY_SYSTEM, compact, compact_or_error
from agent.context.policy import ContextPolicy, ContextSettings
from agent.events import ContextEdit, Error
from agent.providers.anthropic import AnthropicProvider
from agent.providers.base import ModelRequest, ModelResponse
from agent.providers.catalogue import CONTEXT_MANAGEMENT_BETA
from agent.providers.openai_compat import OpenAICompatProvider
from agent.providers.retry import RetryPolicy
from tests.fakes.replies import Usage, http_error, recorded, say
from tests.shared import FIXTURES

from .convo import session

FAST = RetryPolicy(max_retries=2, base_delay_s=0.01, max_delay_s=0.05, jitter=0.0)
FIXTURE = FIXTURES / "anthropic-streams" / "context_management_response.txt"
SUMMARY = "## Task\nFix the failing tests.\n## Next steps\nRe-run pytest -x."


@pytest.fixture
def gpt(llm_server):
    return OpenAICompatProvider(
        "deepseek-chat",
        api_key="k",
        base_url=llm_server.openai_url,
        retry=FAST,
        context_window=128_000,
    )


@pytest.fixture
def claude(llm_server):
    return AnthropicProvider("claude-sonnet-5-5", api_key="k", base_url=llm_server.url, retry=FAST)


async def test_compaction_with_the_openai_provider(gpt, llm_server):
    llm_server.push(say(SUMMARY, usage=Usage(input_tokens=9000, output_tokens=40)))
    msgs = session(40, turn_every=10)
    result = await compact(gpt, msgs, keep_last_turns=2, keep_tokens=30_000)
    assert result.summary == SUMMARY
    assert 0 < result.cut_index < len(msgs) and result.tokens_after < result.tokens_before
    assert result.usage.input_tokens == 9000 and result.model
    (req,) = llm_server.model_requests
    body = req.body
    assert body["model"] == "deepseek-chat"
    assert not body.get("tools")
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user"]
    assert body["messages"][0]["content"] == SUMMARY_SYSTEM
    prompt = body["messages"][1]["content"]
    prompt = prompt if isinstance(prompt, str) else "".join(p["text"] for p in prompt)
    assert "<transcript>" in prompt and "[bash result]" in prompt and "## Next steps" in prompt


async def test_failing_compaction_call_returns_an_error_without_raising(gpt, llm_server):
    llm_server.push(*[http_error(500)] * (FAST.max_retries + 1))
    msgs = session(20)
    outcome = await compact_or_error(gpt, msgs)
    assert isinstance(outcome, Error) and outcome.kind == "compaction"
    assert "500" in outcome.message and "continues uncompacted" in outcome.message
    assert len(llm_server.model_requests) == FAST.max_retries + 1


async def test_compaction_with_the_anthropic_provider(claude, llm_server):
    llm_server.push(say(SUMMARY))
    result = await compact(claude, session(30), keep_last_turns=1, keep_tokens=10_000)
    assert result.summary == SUMMARY
    body = llm_server.model_requests[-1].body
    # A plain-text transcript: no tool blocks, so no tool definitions are needed.
    assert "tools" not in body or not body["tools"]
    assert all(
        isinstance(m["content"], str) or all(p["type"] == "text" for p in m["content"])
        for m in body["messages"]
    )


async def test_anthropic_receives_the_edit_body_and_reports_applied_edits(claude, llm_server):
    llm_server.push(recorded(FIXTURE))
    policy = ContextPolicy(ContextSettings(), claude)
    request = ModelRequest(
        system="You are Godwit.", messages=session(12), thinking_budget=2048, max_tokens=4096
    )
    prepared = await policy.prepare(request)
    response = None
    async for item in claude.stream(prepared.request):
        if isinstance(item, ModelResponse):
            response = item
    (req,) = llm_server.model_requests
    edits = req.body["context_management"]["edits"]
    assert [e["type"] for e in edits] == ["clear_thinking_20251015", "clear_tool_uses_20250919"]
    assert edits[1]["exclude_tools"] == ["memory"]
    assert CONTEXT_MANAGEMENT_BETA in req.headers.get("anthropic-beta", "")
    event = policy.observe(prepared.request, response)
    assert isinstance(event, ContextEdit) and event.source == "server"
    assert (event.cleared_tool_uses, event.cleared_input_tokens) == (2, 1500)


async def test_openai_is_sent_the_cleared_view(gpt, llm_server):
    llm_server.push(say("ok"))
    settings = ContextSettings(trigger_tokens=20_000, clear_at_least_tokens=5_000)
    policy = ContextPolicy(settings, gpt)
    prepared = await policy.prepare(ModelRequest(system="s", messages=session(30)))
    assert prepared.event is not None
    async for _ in gpt.stream(prepared.request):
        pass
    tool_msgs = [m for m in llm_server.model_requests[0].body["messages"] if m["role"] == "tool"]
    assert len(tool_msgs) == 30
    cleared = [m for m in tool_msgs if m["content"].startswith("[Tool result cleared")]
    assert len(cleared) == prepared.event.cleared_tool_uses
    assert "context_management" not in llm_server.model_requests[0].body


async def test_compaction_due_is_checked_with_the_counting_endpoint(claude, llm_server):
    llm_server.push_count(50_000)
    policy = ContextPolicy(ContextSettings(enabled=False), claude)
    # ~190k tokens by estimate: compaction looks due until the service counts 50k.
    prepared = await policy.prepare(ModelRequest(system="s", messages=session(160)))
    assert prepared.exact and prepared.tokens == 50_000 and not prepared.compact
    assert len(llm_server.requests_to("/v1/messages/count_tokens")) == 1
