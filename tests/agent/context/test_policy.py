from agent.context.policy import ContextPolicy, ContextSettings
from agent.errors import ProviderError
from agent.events import dump_event, parse_event
from agent.messages import Message, TextBlock
from agent.providers.base import ModelRequest, ModelResponse, TokenUsage

from .convo import result_contents, session, step
from .stub_provider import StubProvider

SETTINGS = ContextSettings(trigger_tokens=20_000, clear_at_least_tokens=5_000)


def _request(messages, thinking=None):
    return ModelRequest(system="You are Godwit.", messages=messages, thinking_budget=thinking)


def _reply(input_tokens, applied=()):
    return ModelResponse(
        message=Message(role="assistant", content=[TextBlock(text="ok")]),
        stop_reason="end_turn",
        usage=TokenUsage(input_tokens=input_tokens),
        model="m",
        applied_edits=list(applied),
    )


async def test_client_side_provider_gets_the_edited_view_and_an_event():
    policy = ContextPolicy(SETTINGS, StubProvider(name="openai"))
    msgs = session(30)
    prep = await policy.prepare(_request(msgs))
    assert prep.request.context_management is None
    assert prep.event is not None and prep.event.source == "client"
    cleared = prep.event.applied_edits[0]["cleared_tool_use_ids"]
    assert policy.cleared == set(cleared)
    assert result_contents(prep.request.messages)[cleared[0]].startswith("[Tool result cleared")
    assert prep.tokens <= 30_000 and not prep.compact and not prep.exact
    # Same conversation again: nothing new is cleared, the same view is sent.
    again = await policy.prepare(_request(msgs))
    assert again.event is None
    assert [m.model_dump() for m in again.request.messages] == [
        m.model_dump() for m in prep.request.messages
    ]


async def test_anthropic_gets_the_full_conversation_and_the_edit_body():
    policy = ContextPolicy(SETTINGS, StubProvider(name="anthropic"))
    msgs = session(30)
    prep = await policy.prepare(_request(msgs, thinking=4000))
    assert prep.event is None
    assert prep.request.messages == msgs
    edits = prep.request.context_management["edits"]
    assert [e["type"] for e in edits] == ["clear_thinking_20251015", "clear_tool_uses_20250919"]
    assert edits[1]["trigger"]["value"] == 20_000
    plain = await policy.prepare(_request(msgs))
    assert [e["type"] for e in plain.request.context_management["edits"]] == [
        "clear_tool_uses_20250919"
    ]


async def test_observe_returns_the_server_event_and_anchors_the_estimate():
    policy = ContextPolicy(SETTINGS, StubProvider(name="anthropic"))
    msgs = session(30)
    prep = await policy.prepare(_request(msgs))
    full = prep.tokens
    applied = [
        {
            "type": "clear_tool_uses_20250919",
            "cleared_tool_uses": 20,
            "cleared_input_tokens": full - 9_000,
        }
    ]
    event = policy.observe(prep.request, _reply(9_000, applied))
    assert event.source == "server" and event.cleared_tool_uses == 20
    assert policy.counter.ratio == 1.0 or abs(policy.counter.ratio - 1.0) < 0.01
    # The next request is judged by what the server actually kept, plus what was added.
    nxt = await policy.prepare(_request(msgs + step(31)))
    assert 9_000 < nxt.tokens < 9_000 + 1_500
    assert policy.observe(nxt.request, _reply(10_000)) is None


async def test_compaction_due_is_confirmed_by_the_provider_count():
    msgs = session(150)  # ~170k tokens, past 0.8 of a 200k window even after clearing?
    settings = ContextSettings(enabled=False)
    provider = StubProvider(name="anthropic", count=150_000)
    prep = await ContextPolicy(settings, provider).prepare(_request(msgs))
    assert prep.exact and prep.tokens == 150_000 and not prep.compact
    assert len(provider.counted) == 1
    provider.count = 170_000
    prep = await ContextPolicy(settings, provider).prepare(_request(msgs))
    assert prep.compact and prep.exact
    # A provider without a count (None) or with a failing one: the estimate decides.
    for count in (None, ProviderError("count failed")):
        prep = await ContextPolicy(settings, StubProvider(count=count)).prepare(_request(msgs))
        assert prep.compact and not prep.exact
    # Below the threshold nobody is asked.
    small = StubProvider(count=1)
    prep = await ContextPolicy(settings, small).prepare(_request(session(5)))
    assert not prep.compact and small.counted == []
    assert not ContextSettings(auto_compact=False).should_compact(10**9, 200_000)


async def test_restore_after_restart_sends_the_same_view(tmp_path):
    log = tmp_path / "log.jsonl"
    policy = ContextPolicy(SETTINGS, StubProvider())
    msgs = session(0)
    with log.open("w") as f:
        for i in range(50):
            msgs += step(i)
            prep = await policy.prepare(_request(msgs))
            if prep.event:
                f.write(dump_event(prep.event) + "\n")
            policy.observe(prep.request, _reply(prep.tokens))
    events = [parse_event(line) for line in log.read_text().splitlines()]
    resumed = ContextPolicy(SETTINGS, StubProvider())
    resumed.restore(events)
    again = await resumed.prepare(_request(msgs))
    assert again.event is None
    assert [m.model_dump() for m in again.request.messages] == [
        m.model_dump() for m in prep.request.messages
    ]


async def test_breakdown_reflects_the_view_that_is_sent():
    policy = ContextPolicy(SETTINGS, StubProvider(context_window=128_000))
    msgs = session(30)
    full = policy.breakdown(_request(msgs))
    await policy.prepare(_request(msgs))
    edited = policy.breakdown(_request(msgs), memory_text="remember: tabs")
    assert edited.window == 128_000
    assert edited.tool_results < full.tool_results
    assert edited.memory > 0
    assert edited.total == (
        edited.system_prompt
        + edited.tools
        + edited.memory
        + edited.conversation
        + edited.tool_results
    )


async def test_editing_after_a_compaction_uses_the_same_cleared_set():
    from agent.context.compaction import compact, summary_message

    provider = StubProvider(reply="## Task\nsummary")
    policy = ContextPolicy(SETTINGS, provider)
    msgs = session(40)
    prep = await policy.prepare(_request(msgs))
    cleared_before = set(policy.cleared)
    assert cleared_before
    result = await compact(
        provider, msgs, keep_last_turns=1, keep_tokens=25_000, counter=policy.counter
    )
    after = [summary_message(result.summary), *msgs[result.cut_index :]]
    prep = await policy.prepare(_request(after))
    # The kept tail is under the trigger: nothing new is cleared, and what was cleared in the
    # kept part stays cleared (the sent text does not flip back).
    assert prep.event is None
    kept_ids = set(result_contents(after))
    assert kept_ids & cleared_before and kept_ids - cleared_before
    for tid in kept_ids & cleared_before:
        assert result_contents(prep.request.messages)[tid].startswith("[Tool result cleared")
    assert prep.tokens < 20_000
