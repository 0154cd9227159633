import pytest
from pydantic import ValidationError

from agent.context.policy import (
    CLEARED_INPUT,
    ClientContextEditor,
    ContextSettings,
    cleared_ids_from_events,
    context_edit_event,
    describe_call,
    placeholder,
)
from agent.events import ContextEdit, UserMessage, dump_event, parse_event
from agent.messages import Message, ToolUseBlock

from .convo import result_contents, session, step

# 4000-character results are about 1,150 tokens each.
SMALL = ContextSettings(trigger_tokens=20_000, keep_tool_uses=3, clear_at_least_tokens=5_000)


def _dump(messages):
    return [m.model_dump() for m in messages]


def test_below_trigger_the_view_is_the_conversation_itself():
    msgs = session(10)
    res = ClientContextEditor(SMALL).apply(msgs, set())
    assert res.newly_cleared == [] and res.freed_tokens == 0 and res.event() is None
    assert all(a is b for a, b in zip(res.messages, msgs))
    assert res.tokens < SMALL.trigger_tokens


def _just_over(trigger_margin: int, steps: int = 30):
    """Settings whose trigger sits `trigger_margin` tokens below `session(steps)`."""
    msgs = session(steps)
    tokens = ClientContextEditor(SMALL).counter.estimate_messages(msgs)
    return msgs, SMALL.model_copy(update={"trigger_tokens": tokens - trigger_margin})


def test_just_over_trigger_clears_oldest_until_clear_at_least():
    msgs, settings = _just_over(100)
    before = _dump(msgs)
    editor = ClientContextEditor(settings)
    res = editor.apply(msgs, set())
    # Oldest first, just enough for 5,000 tokens: five results of ~1,100 tokens each.
    assert res.newly_cleared == [f"toolu_{i:03d}" for i in range(5)]
    assert 5_000 <= res.freed_tokens < 5_000 + 1_200
    assert res.tokens == editor.counter.estimate_messages(res.messages)
    contents = result_contents(res.messages)
    assert contents["toolu_000"].startswith(
        "[Tool result cleared to save context: bash `cat file_0.py`"
    )
    assert contents["toolu_005"] == result_contents(msgs)["toolu_005"]
    # The log's messages are untouched.
    assert _dump(msgs) == before
    ev = res.event()
    assert ev.source == "client" and ev.cleared_tool_uses == 5
    assert ev.applied_edits[0]["cleared_tool_use_ids"] == res.newly_cleared


def test_far_over_trigger_clears_back_under_it_in_one_step():
    msgs = session(60)  # ~70k tokens against a 20k trigger
    editor = ClientContextEditor(SMALL)
    res = editor.apply(msgs, set())
    assert res.tokens <= SMALL.trigger_tokens
    # ...and not much further: one result less would still be over.
    assert res.tokens > SMALL.trigger_tokens - 1_200
    assert res.newly_cleared == [f"toolu_{i:03d}" for i in range(len(res.newly_cleared))]
    again = editor.apply(msgs, set(res.newly_cleared))
    assert again.newly_cleared == []


def test_keep_protects_the_most_recent_tool_uses():
    msgs = session(8)  # ~9,500 tokens
    settings = ContextSettings(
        trigger_tokens=1_000, keep_tool_uses=3, clear_at_least_tokens=100_000
    )
    res = ClientContextEditor(settings).apply(msgs, set())
    assert res.newly_cleared == []  # 5 clearable results cannot free 100k: nothing is cleared
    # A tiny clear_at_least just over the trigger clears one result, the oldest.
    msgs, settings = _just_over(10, steps=8)
    settings = settings.model_copy(update={"clear_at_least_tokens": 1})
    assert ClientContextEditor(settings).apply(msgs, set()).newly_cleared == ["toolu_000"]
    # Far over the trigger all five clearable results go; the last three stay.
    settings = ContextSettings(trigger_tokens=1_000, keep_tool_uses=3, clear_at_least_tokens=5_000)
    res = ClientContextEditor(settings).apply(msgs, set())
    assert res.newly_cleared == [f"toolu_{i:03d}" for i in range(5)]
    contents = result_contents(res.messages)
    for i in range(5, 8):
        assert not contents[f"toolu_{i:03d}"].startswith("[Tool result cleared")


def test_excluded_tools_are_never_cleared():
    msgs = session(30, names={0: "memory", 1: "memory", 4: "grep"})
    settings = SMALL.model_copy(update={"exclude_tools": ["memory", "grep"]})
    res = ClientContextEditor(settings).apply(msgs, set())
    assert "toolu_000" not in res.newly_cleared and "toolu_001" not in res.newly_cleared
    assert "toolu_004" not in res.newly_cleared
    assert res.newly_cleared[0] == "toolu_002"
    # By default the memory tool is the excluded one.
    assert ContextSettings().exclude_tools == ["memory"]


def test_cleared_set_is_stable_between_triggers_so_the_prefix_is_identical():
    settings = ContextSettings(trigger_tokens=30_000, keep_tool_uses=3, clear_at_least_tokens=8_000)
    editor = ClientContextEditor(settings)
    cleared: set[str] = set()
    convo = session(0)
    previous = None
    steps_with_edit = 0
    for i in range(120):
        convo += step(i)
        res = editor.apply(convo, cleared)
        assert set(res.newly_cleared).isdisjoint(cleared)
        cleared |= set(res.newly_cleared)
        if res.newly_cleared:
            steps_with_edit += 1
        elif previous is not None:
            # No step taken: what was sent last time is an exact prefix of what is sent now.
            assert _dump(res.messages[: len(previous)]) == _dump(previous)
        assert res.tokens <= settings.trigger_tokens + 1_500
        previous = res.messages
    # ~140k tokens of results, 8k+ freed per step: a step every 7 or so calls, not every call.
    assert 10 <= steps_with_edit <= 20
    assert len(cleared) >= 100


def test_placeholder_text_and_call_descriptions():
    use = ToolUseBlock(id="t", name="bash", input={"command": "pytest -x"})
    assert placeholder(use, 12_340) == (
        "[Tool result cleared to save context: bash `pytest -x` output, 12,340 tokens. "
        "Call the tool again if you need it.]"
    )
    view = ToolUseBlock(
        id="t", name="str_replace_based_edit_tool", input={"command": "view", "path": "src/app.py"}
    )
    assert describe_call(view) == "str_replace_based_edit_tool `view src/app.py`"
    grep = ToolUseBlock(id="t", name="grep", input={"pattern": "def main", "path": "src"})
    assert describe_call(grep) == "grep `def main src`"
    long = ToolUseBlock(id="t", name="bash", input={"command": "echo " + "x" * 200})
    assert len(describe_call(long)) < 100 and describe_call(long).endswith("...`")
    assert describe_call(ToolUseBlock(id="t", name="other", input={"n": 3})) == "other"
    assert placeholder(None, 5).startswith("[Tool result cleared to save context: tool output, 5")


def test_clear_tool_inputs_replaces_inputs_of_cleared_calls_only():
    big = {"command": "create", "path": "a.py", "file_text": "x = 1\n" * 2000}
    msgs = session(0)
    for i in range(20):
        msgs += step(i, "str_replace_based_edit_tool", 4000, **big)
    settings = SMALL.model_copy(update={"clear_tool_inputs": True})
    res = ClientContextEditor(settings).apply(msgs, set())
    inputs = {b.id: b.input for m in res.messages for b in m.content if isinstance(b, ToolUseBlock)}
    for tid in res.newly_cleared:
        assert inputs[tid] == CLEARED_INPUT
    assert inputs["toolu_019"] == big
    # Inputs count towards what is freed.
    without = ClientContextEditor(SMALL).apply(msgs, set())
    assert res.freed_tokens > without.freed_tokens + 50_000
    assert res.tokens < without.tokens - 50_000
    # And the originals are untouched.
    assert all(b.input == big for m in msgs for b in m.content if isinstance(b, ToolUseBlock))


def test_pending_call_without_result_is_left_alone():
    msgs = session(30)
    pending = ToolUseBlock(id="toolu_pending", name="bash", input={"command": "make"})
    msgs.append(Message(role="assistant", content=[pending]))
    res = ClientContextEditor(SMALL.model_copy(update={"keep_tool_uses": 0})).apply(msgs, set())
    assert "toolu_pending" not in res.newly_cleared
    assert res.messages[-1] is msgs[-1]


def test_disabled_editor_sends_the_conversation_unedited():
    msgs = session(40)
    off = ClientContextEditor(SMALL.model_copy(update={"enabled": False}))
    for cleared in (set(), {"toolu_000", "toolu_001"}):  # earlier clearing is not replayed
        res = off.apply(msgs, cleared)
        assert res.newly_cleared == [] and all(a is b for a, b in zip(res.messages, msgs))
        assert len(res.messages) == len(msgs) and res.tokens > SMALL.trigger_tokens


def test_resume_from_a_real_log_sends_the_same_view(tmp_path):
    settings = ContextSettings(trigger_tokens=25_000, keep_tool_uses=2, clear_at_least_tokens=6_000)
    log = tmp_path / "session.jsonl"
    editor = ClientContextEditor(settings)
    cleared: set[str] = set()
    convo = session(0)
    with log.open("w") as f:
        f.write(dump_event(UserMessage(text="go", turn=1)) + "\n")
        for i in range(60):
            convo += step(i)
            res = editor.apply(convo, cleared)
            cleared |= set(res.newly_cleared)
            if res.event():
                f.write(dump_event(res.event()) + "\n")
    sent_before = _dump(res.messages)
    # A fresh process: new editor, the cleared set comes only from the log.
    events = [parse_event(line) for line in log.read_text().splitlines()]
    restored = cleared_ids_from_events(events)
    assert restored == cleared
    again = ClientContextEditor(settings).apply(convo, restored)
    assert again.newly_cleared == []
    assert _dump(again.messages) == sent_before


def test_cleared_ids_ignore_server_edits_and_other_events():
    server = context_edit_event(
        [{"type": "clear_tool_uses_20250919", "cleared_tool_uses": 2, "cleared_input_tokens": 10}]
    )
    client = ContextEdit(
        source="client",
        applied_edits=[
            {"type": "clear_tool_uses_20250919", "cleared_tool_use_ids": ["a", "b"]},
            {"type": "something_else", "cleared_tool_use_ids": ["z"]},
        ],
    )
    assert cleared_ids_from_events([UserMessage(text="x", turn=1), server, client]) == {"a", "b"}


def test_settings_validate_and_trigger_follows_the_window():
    s = ContextSettings()
    assert s.trigger_for(200_000) == 100_000
    assert s.trigger_for(32_768) == 16_384
    assert s.trigger_for(None) == 100_000
    assert s.should_compact(160_000, 200_000) and not s.should_compact(159_999, 200_000)
    assert not s.model_copy(update={"auto_compact": False}).should_compact(199_000, 200_000)
    for bad in (
        {"keep_tool_uses": -1},
        {"compact_at_fraction": 1.5},
        {"trigger_fraction": 0},
        {"clear_thinking_keep_turns": 0},
        {"unknown": 1},
        {"trigger_tokens": 0},
    ):
        with pytest.raises(ValidationError):
            ContextSettings(**bad)
    assert ContextSettings(clear_thinking_keep_turns="all").clear_thinking_keep_turns == "all"
