import random

import pytest

from agent.context.compaction import (
    SUMMARY_PREFIX,
    SUMMARY_SYSTEM,
    CompactionError,
    build_summary_request,
    choose_cut,
    compact,
    compact_or_error,
    render_transcript,
    summary_message,
    valid_cuts,
)
from agent.context.tokens import TokenCounter
from agent.events import Error
from agent.messages import Message, TextBlock, ThinkingBlock, ToolResultBlock, ToolUseBlock

from .convo import session, step
from .stub_provider import StubProvider


def _random_conversation(rng: random.Random) -> list[Message]:
    """User turns, assistant messages with 0-3 parallel calls, results, interjections."""
    out = [Message.user("task")]
    n = 0
    for _ in range(rng.randint(3, 25)):
        calls = [
            ToolUseBlock(id=f"t{n + k}", name="bash", input={"command": "ls"})
            for k in range(rng.randint(0, 3))
        ]
        n += len(calls)
        content = [ThinkingBlock(thinking="hmm")] if rng.random() < 0.3 else []
        out.append(Message(role="assistant", content=content + [TextBlock(text="ok")] + calls))
        if calls:
            results = [
                ToolResultBlock(tool_use_id=c.id, content="x" * rng.randint(0, 3000)) for c in calls
            ]
            if rng.random() < 0.2:  # the user typed while the tools ran
                results.append(TextBlock(text="also check y"))
            out.append(Message(role="user", content=results))
        elif rng.random() < 0.7:
            out.append(Message.user("next"))
    return out


def _open_across(messages, cut):
    before = {b.id for m in messages[:cut] for b in m.content if isinstance(b, ToolUseBlock)}
    after = {
        b.tool_use_id for m in messages[cut:] for b in m.content if isinstance(b, ToolResultBlock)
    }
    return before & after


def test_cuts_never_split_a_call_from_its_result():
    rng = random.Random(7)
    checked = 0
    for _ in range(300):
        msgs = _random_conversation(rng)
        for cut in valid_cuts(msgs):
            assert not _open_across(msgs, cut)
            assert msgs[cut].role == "assistant" or not any(
                isinstance(b, ToolResultBlock) for b in msgs[cut].content
            )
            checked += 1
        # And the chosen cut for any budget is one of them.
        for keep_turns, keep_tokens in ((1, 500), (2, 5000), (3, 10**6)):
            try:
                cut = choose_cut(msgs, keep_turns, keep_tokens)
            except CompactionError:
                continue
            assert cut in valid_cuts(msgs)
            assert not _open_across(msgs, cut)
    assert checked > 1000


def test_cut_prefers_the_start_of_the_kept_user_turns():
    msgs = session(12, size=500, turn_every=4)
    starts = [i for i, m in enumerate(msgs) if m.role == "user" and m.text().startswith("Now")]
    assert choose_cut(msgs, 2, 100_000) == starts[-2]
    assert choose_cut(msgs, 1, 100_000) == starts[-1]
    assert choose_cut(msgs, 0, 100_000) == len(msgs)


def test_one_long_turn_is_cut_between_steps_to_fit_the_budget():
    msgs = session(40, size=4000)  # one user prompt, 40 steps of ~1,150 tokens
    counter = TokenCounter()
    cut = choose_cut(msgs, 2, 10_000, counter)
    assert msgs[cut].role == "assistant"
    kept = counter.estimate_messages(msgs[cut:])
    assert kept <= 10_000
    # The earliest cut that fits: one step more would not.
    assert counter.estimate_messages(msgs[cut - 2 :]) > 10_000


def test_a_huge_last_step_still_leaves_the_last_step():
    msgs = session(5, size=1000) + step(99, size=400_000)
    cut = choose_cut(msgs, 2, 5_000)
    assert cut == len(msgs) - 2  # just before the last call


def test_nothing_to_compact_is_a_clear_error():
    with pytest.raises(CompactionError, match="empty"):
        choose_cut([], 2, 1000)
    with pytest.raises(CompactionError, match="no point to cut"):
        choose_cut([Message.user("hello")], 2, 1000)
    with pytest.raises(ValueError):
        choose_cut(session(3), -1, 1000)


def test_transcript_shows_calls_results_and_clips_long_output():
    msgs = [
        Message.user("Please fix tests"),
        Message(
            role="assistant",
            content=[
                ThinkingBlock(thinking="secret plan"),
                TextBlock(text="Running them."),
                ToolUseBlock(id="a", name="bash", input={"command": "pytest -x"}),
            ],
        ),
        Message(
            role="user",
            content=[
                ToolResultBlock(tool_use_id="a", is_error=True, content="E" * 50_000 + "TAIL")
            ],
        ),
    ]
    text = render_transcript(msgs, result_chars=1000)
    assert "[user]\nPlease fix tests" in text
    assert '[assistant called bash] {"command": "pytest -x"}' in text
    assert "[bash result (error)]" in text
    assert "characters omitted" in text and text.rstrip().endswith("TAIL")
    assert "secret plan" not in text
    assert len(text) < 2000


def test_summary_request_fits_the_budget_however_long_the_conversation():
    msgs = session(300, size=12_000)  # ~1M tokens
    counter = TokenCounter()
    req = build_summary_request(
        msgs, budget_tokens=20_000, instructions="focus on tests", counter=counter
    )
    assert req.system == SUMMARY_SYSTEM and req.tools == [] and req.thinking_budget is None
    assert len(req.messages) == 1 and req.messages[0].role == "user"
    prompt = req.messages[0].text()
    assert counter.estimate_text(req.system + prompt) <= 20_000
    assert prompt.rstrip().endswith("Also: focus on tests")
    assert "## Next steps" in prompt
    # The newest steps survive the shortening.
    assert "Step 299." in prompt


async def test_compact_summarises_before_the_cut():
    provider = StubProvider(reply="## Task\nFix the failing tests.\n## Next steps\nRun pytest.")
    msgs = session(30, size=4000, turn_every=10)
    result = await compact(provider, msgs, keep_last_turns=2, keep_tokens=30_000)
    assert result.summary.startswith("## Task")
    assert 0 < result.cut_index < len(msgs)
    assert result.tokens_after < result.tokens_before
    assert result.usage.input_tokens == 1234 and result.model == "stub-model"
    (req,) = provider.requests
    prompt = req.messages[0].text()
    # Exactly what is before the cut is summarised.
    before = [m.text() for m in msgs[: result.cut_index] if m.role == "assistant"]
    after = [m.text() for m in msgs[result.cut_index :] if m.role == "assistant"]
    assert before and after
    assert all(f"[assistant]\n{t}\n" in prompt for t in before)
    assert not any(f"[assistant]\n{t}\n" in prompt for t in after)
    rebuilt = [summary_message(result.summary), *msgs[result.cut_index :]]
    assert rebuilt[0].text() == SUMMARY_PREFIX + result.summary
    assert TokenCounter().estimate_messages(rebuilt) == result.tokens_after


async def test_failed_summary_call_becomes_an_error_event_and_changes_nothing():
    provider = StubProvider(fail=True)
    msgs = session(10)
    before = [m.model_dump() for m in msgs]
    with pytest.raises(CompactionError, match="summary call failed: HTTP 500"):
        await compact(provider, msgs)
    out = await compact_or_error(provider, msgs)
    assert isinstance(out, Error) and out.kind == "compaction"
    assert "continues uncompacted" in out.message
    assert [m.model_dump() for m in msgs] == before


async def test_empty_or_cut_off_summary():
    with pytest.raises(CompactionError, match="no summary"):
        await compact(StubProvider(reply="  "), session(10))
    result = await compact(
        StubProvider(reply="partial notes", stop_reason="max_tokens"), session(10)
    )
    assert result.summary.endswith("[The summary was cut off at its length limit.]")


async def test_a_second_compaction_folds_the_first_summary_in():
    provider = StubProvider(reply="## Task\nFirst summary: migrate the loader.")
    msgs = session(30, size=4000, turn_every=10)
    first = await compact(provider, msgs, keep_last_turns=1, keep_tokens=20_000)
    rebuilt = [summary_message(first.summary), *msgs[first.cut_index :]]
    rebuilt += session(20, size=4000)[1:]  # the session went on
    provider.reply = "## Task\nSecond summary."
    second = await compact(provider, rebuilt, keep_last_turns=1, keep_tokens=20_000)
    assert second.cut_index > 0
    prompt = provider.requests[-1].messages[0].text()
    assert "First summary: migrate the loader." in prompt
    assert prompt.index("First summary") < prompt.index("Step ")
