"""The conversation view rebuilt from events: rewinds, undo, compaction, interrupted calls."""

from agent import events as ev
from agent.messages import Message, TextBlock, ToolResultBlock, ToolUseBlock
from agent.session.conversation import INTERRUPTED_RESULT, Conversation


def numbered(events):
    for i, e in enumerate(events):
        e.seq = i
    return events


def assistant(text, *calls, turn=1):
    blocks = [TextBlock(text=text)] + [
        ToolUseBlock(id=c, name="bash", input={"command": c}) for c in calls
    ]
    return ev.AssistantMessage(
        message=Message(role="assistant", content=blocks),
        stop_reason="tool_use" if calls else "end_turn",
        model="m",
        turn=turn,
    )


def texts(conv):
    out = []
    for m in conv.messages():
        for b in m.content:
            out.append(getattr(b, "text", None) or getattr(b, "content", None) or b.id)
    return out


def test_tool_calls_and_results_pair_up_and_merge_into_user_messages():
    events = numbered(
        [
            ev.UserMessage(text="hi", turn=1),
            assistant("look", "a", "b"),
            ev.ToolResult(tool_use_id="a", name="bash", content="A"),
            ev.ToolResult(tool_use_id="b", name="bash", content="B"),
            assistant("done"),
            ev.UserMessage(text="next", turn=2),
        ]
    )
    msgs = Conversation.from_events(events).messages()
    assert [m.role for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    assert [b.tool_use_id for b in msgs[2].content] == ["a", "b"]


def test_a_call_without_result_gets_an_interrupted_error_result():
    events = numbered(
        [
            ev.UserMessage(text="hi", turn=1),
            assistant("run", "a"),
            ev.UserMessage(text="again", turn=2),
        ]
    )
    msgs = Conversation.from_events(events).messages()
    result, text = msgs[2].content
    assert isinstance(result, ToolResultBlock) and result.is_error
    assert result.content == INTERRUPTED_RESULT
    assert isinstance(text, TextBlock) and text.text == "again"


def test_rewind_to_a_turn_checkpoint_and_undo_it():
    events = numbered(
        [
            ev.Checkpoint(id="c1", turn=1, label="one", reason="turn_start"),
            ev.UserMessage(text="one", turn=1),
            assistant("r1"),
            ev.Checkpoint(id="c2", turn=2, label="two", reason="turn_start"),
            ev.UserMessage(text="two", turn=2),
            assistant("r2"),
        ]
    )
    conv = Conversation.from_events(events)
    assert texts(conv) == ["one", "r1", "two", "r2"]
    rewind = ev.Rewind(checkpoint="c2", restore="conversation", to_seq=3)
    rewind.seq = 6
    conv.apply(rewind)
    assert texts(conv) == ["one", "r1"]
    # New work after the rewind builds on the restored conversation.
    more = numbered([ev.UserMessage(text="other", turn=2)])[0]
    more.seq = 7
    conv.apply(more)
    assert texts(conv) == ["one", "r1", "other"]
    undo = ev.Rewind(checkpoint="c2", restore="conversation", undo=True)
    conv.apply(undo)
    assert texts(conv) == ["one", "r1", "two", "r2"]


def test_code_only_rewind_leaves_the_conversation():
    events = numbered(
        [
            ev.Checkpoint(id="c1", turn=1, label="one", reason="turn_start"),
            ev.UserMessage(text="one", turn=1),
            assistant("r1"),
        ]
    )
    conv = Conversation.from_events(events)
    conv.apply(ev.Rewind(checkpoint="c1", restore="code", to_seq=0))
    assert texts(conv) == ["one", "r1"]


def test_compaction_replaces_the_head_and_a_rewind_past_it_restores_the_original():
    events = numbered(
        [
            ev.Checkpoint(id="c1", turn=1, label="one", reason="turn_start"),
            ev.UserMessage(text="one", turn=1),
            assistant("r1"),
            ev.Checkpoint(id="c2", turn=2, label="two", reason="turn_start"),
            ev.UserMessage(text="two", turn=2),
            assistant("r2"),
            ev.Compaction(summary="S", boundary_seq=4),
            ev.UserMessage(text="three", turn=3),
        ]
    )
    conv = Conversation.from_events(events)
    t = texts(conv)
    assert t[0].endswith("S") and t[1:] == ["two", "r2", "three"]
    msgs, seqs = conv.message_seqs()
    assert seqs[0] == 4 and len(seqs) == len(msgs)
    # A second compaction replaces the first summary too.
    second = ev.Compaction(summary="S2", boundary_seq=7)
    second.seq = 8
    conv.apply(second)
    t = texts(conv)
    assert t[0].endswith("S2") and t[1:] == ["three"]
    # Rewinding to a checkpoint before the compaction brings the original messages back.
    rewind = ev.Rewind(checkpoint="c2", restore="both", to_seq=3)
    conv.apply(rewind)
    assert texts(conv) == ["one", "r1"]
