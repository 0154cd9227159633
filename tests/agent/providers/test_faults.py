"""Faults injected by the fake server, for both providers: retried, announced, or reported."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from agent.errors import ModelUnavailable, ProviderError
from agent.providers.anthropic import AnthropicProvider
from agent.providers.openai_compat import OpenAICompatProvider
from agent.providers.retry import RetryPolicy
from tests.agent.providers.helpers import (
    FAST,
    collect,
    final,
    request,
    retries,
    text_after_last_retry,
)
from tests.fakes.replies import ToolUse, call, calls, http_error, overloaded, say


@pytest.fixture(params=["anthropic", "openai"])
def provider(request, llm_server):
    if request.param == "anthropic":
        return AnthropicProvider(
            "claude-sonnet-5-5", api_key="k", base_url=llm_server.url, retry=FAST
        )
    return OpenAICompatProvider(
        "deepseek-chat", api_key="k", base_url=llm_server.openai_url, retry=FAST
    )


async def test_429_retry_after_seconds_is_honoured(provider, llm_server):
    llm_server.push(http_error(429, retry_after="0.4"), say("done"))
    started = time.monotonic()
    items = await collect(provider, request())
    elapsed = time.monotonic() - started
    (retry,) = retries(items)
    assert retry.delay_s == pytest.approx(0.4)
    assert "429" in retry.reason
    assert final(items).message.text() == "done"
    # Measured from the server's side: the second request came >= 0.4 s after the first.
    first, second = llm_server.model_requests
    assert second.received_at - first.received_at >= 0.38
    assert elapsed < 3


async def test_retry_after_ms_wins_over_seconds(provider, llm_server):
    reply = http_error(429, retry_after=30, retry_after_ms=150)
    llm_server.push(reply, say("done"))
    (retry,) = retries(await collect(provider, request()))
    assert retry.delay_s == pytest.approx(0.15)


async def test_retry_after_http_date(provider, llm_server):
    llm_server.push(
        http_error(503, retry_after=formatdate(time.time() + 1, usegmt=True)), say("done")
    )
    (retry,) = retries(await collect(provider, request()))
    # An HTTP date has one-second resolution: the wait is somewhere up to that second.
    assert 0.0 <= retry.delay_s <= 1.0


async def test_retry_after_is_capped(llm_server):
    capped = RetryPolicy(max_retries=2, base_delay_s=0.01, max_delay_s=0.2, jitter=0)
    provider = AnthropicProvider(
        "claude-sonnet-5-5", api_key="k", base_url=llm_server.url, retry=capped
    )
    llm_server.push(http_error(429, retry_after=3600), say("done"))
    (retry,) = retries(await collect(provider, request()))
    assert retry.delay_s == pytest.approx(0.2)


async def test_529_overloaded_then_success(provider, llm_server):
    llm_server.push(overloaded(), overloaded(), say("done"))
    items = await collect(provider, request())
    assert [r.attempt for r in retries(items)] == [1, 2]
    # Exponential backoff without retry-after: 0.01 then 0.02.
    assert [r.delay_s for r in retries(items)] == [0.01, 0.02]
    assert final(items).message.text() == "done"


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503, 504])
async def test_retryable_statuses(provider, llm_server, status):
    llm_server.push(http_error(status), say("done"))
    items = await collect(provider, request())
    assert len(retries(items)) == 1 and str(status) in retries(items)[0].reason
    assert final(items).message.text() == "done"


async def test_error_event_mid_stream(provider, llm_server):
    llm_server.push(say("partial text that will be void", error_event_after=4), say("whole"))
    items = await collect(provider, request())
    (retry,) = retries(items)
    assert "overloaded_error" in retry.reason
    assert text_after_last_retry(items) == "whole"
    assert final(items).message.text() == "whole"


async def test_dropped_connection_mid_stream(provider, llm_server):
    llm_server.push(
        call("bash", {"command": "rm -rf build"}, text="Cleaning up.", drop_after=6), say("again")
    )
    items = await collect(provider, request())
    (retry,) = retries(items)
    assert "dropped" in retry.reason or "connection" in retry.reason
    # The cut-off tool call never reaches the caller: only the retried reply does.
    resp = final(items)
    assert resp.message.tool_uses() == [] and resp.message.text() == "again"


async def test_stream_ending_without_final_event(provider, llm_server):
    llm_server.push(
        call("bash", {"command": "make"}, truncate_after=5), call("bash", {"command": "make"})
    )
    items = await collect(provider, request())
    (retry,) = retries(items)
    assert retry.reason.startswith("the stream ended")
    assert final(items).message.tool_uses()[0].input == {"command": "make"}


async def test_slow_chunks_arrive_whole(provider, llm_server):
    llm_server.push(say("slow but sure", event_delay_s=0.03, text_chunk=3))
    items = await collect(provider, request())
    assert not retries(items)
    assert final(items).message.text() == "slow but sure"


async def test_stalled_stream_times_out_and_is_retried(llm_server):
    provider = AnthropicProvider(
        "claude-sonnet-5-5", api_key="k", base_url=llm_server.url, retry=FAST, timeout_s=0.3
    )
    llm_server.push(say("stalls", event_delay_s=0.6), say("fine"))
    items = await collect(provider, request())
    assert len(retries(items)) == 1 and "time" in retries(items)[0].reason
    assert final(items).message.text() == "fine"


async def test_split_tool_input_assembled(provider, llm_server):
    args = {
        "path": "src/app.py",
        "old_str": "def f():\n    return 1",
        "new_str": "def f():\n    return 2",
    }
    llm_server.push(call("str_replace_based_edit_tool", args, json_chunk=2))
    resp = final(await collect(provider, request()))
    assert resp.message.tool_uses()[0].input == args
    assert resp.stop_reason == "tool_use"


async def test_retries_exhausted(provider, llm_server):
    llm_server.push(*[overloaded() for _ in range(5)])
    with pytest.raises(ProviderError) as caught:
        await collect(provider, request())
    err = caught.value
    assert "after 5 attempts" in str(err) and "529" in str(err)
    assert err.status == 529 and err.kind == "api"
    assert llm_server.pending == 0


async def test_incomplete_streams_exhausted_say_so(provider, llm_server):
    llm_server.push(*[say("cut", truncate_after=2) for _ in range(5)])
    with pytest.raises(ProviderError) as caught:
        await collect(provider, request())
    assert caught.value.kind == "incomplete"
    assert "the stream ended" in str(caught.value)


async def test_unknown_model_404(provider, llm_server):
    llm_server.push(http_error(404, message="model: claude-nope-9"))
    with pytest.raises(ModelUnavailable) as caught:
        await collect(provider, request())
    message = str(caught.value)
    assert caught.value.kind == "model" and caught.value.status == 404
    assert "--model" in message and "`model` key in settings" in message
    assert len(llm_server.model_requests) == 1  # not retried


async def test_retired_model_400(provider, llm_server):
    llm_server.push(
        http_error(400, message="The model claude-2.1 has been retired and is no longer available.")
    )
    with pytest.raises(ModelUnavailable):
        await collect(provider, request())


async def test_anthropic_model_error_names_model_and_fix(llm_server):
    provider = AnthropicProvider(
        "claude-sonnet-0-1", api_key="k", base_url=llm_server.url, retry=FAST
    )
    llm_server.push(http_error(404, message="model: claude-sonnet-0-1"))
    with pytest.raises(ModelUnavailable, match="claude-sonnet-0-1") as caught:
        await collect(provider, request())
    assert "--model anthropic:claude-sonnet-5-5" in str(caught.value)


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_failure(provider, llm_server, status):
    llm_server.push(http_error(status, message="invalid x-api-key"))
    with pytest.raises(ProviderError) as caught:
        await collect(provider, request())
    assert caught.value.kind == "auth"
    key_env = "ANTHROPIC_API_KEY" if isinstance(provider, AnthropicProvider) else "OPENAI_API_KEY"
    assert key_env in str(caught.value)
    assert len(llm_server.model_requests) == 1


@pytest.mark.parametrize("status", [400, 413, 422])
async def test_non_retryable_4xx_reports_server_message(provider, llm_server, status):
    llm_server.push(http_error(status, message="messages.3: tool_use ids must be unique"))
    with pytest.raises(ProviderError) as caught:
        await collect(provider, request())
    assert not isinstance(caught.value, ModelUnavailable)
    assert "tool_use ids must be unique" in str(caught.value) and caught.value.status == status
    assert len(llm_server.model_requests) == 1


async def test_prompt_too_long_is_a_context_error(provider, llm_server):
    llm_server.push(http_error(400, message="prompt is too long: 210000 tokens > 200000 maximum"))
    with pytest.raises(ProviderError) as caught:
        await collect(provider, request())
    assert caught.value.kind == "context"


async def test_connection_refused_is_retried_then_reported(llm_server):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    policy = RetryPolicy(max_retries=1, base_delay_s=0.01, jitter=0)
    provider = AnthropicProvider(
        "claude-sonnet-5-5", api_key="k", base_url=f"http://127.0.0.1:{port}", retry=policy
    )
    with pytest.raises(ProviderError, match="after 2 attempts: connection failed"):
        await collect(provider, request())


async def test_parallel_tool_calls_survive_a_retry(provider, llm_server):
    both = calls(ToolUse("glob", {"pattern": "**/*.py"}), ToolUse("grep", {"pattern": "TODO"}))
    llm_server.push(http_error(500), both)
    resp = final(await collect(provider, request()))
    assert [(t.name, t.input) for t in resp.message.tool_uses()] == [
        ("glob", {"pattern": "**/*.py"}),
        ("grep", {"pattern": "TODO"}),
    ]


async def test_consumer_stopping_early_leaves_the_provider_usable(provider, llm_server):
    from agent.events import TextDelta

    llm_server.push(say("a long answer " * 20, event_delay_s=0.01, text_chunk=5), say("next"))
    stream = provider.stream(request())
    async for item in stream:
        if isinstance(item, TextDelta):
            break
    await stream.aclose()  # what an interrupted turn does
    assert final(await collect(provider, request())).message.text() == "next"
