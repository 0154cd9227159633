"""The conversation the model sees, rebuilt from the session's events.

The log is append-only; rewinds and compactions are events too. To rebuild cheaply the
conversation is a persistent (immutable, shared-tail) list of entries: a checkpoint remembers the
list as it was with one pointer, a rewind puts that pointer back, an undo-rewind restores the
pointer saved by the rewind. Replaying a log of n events is O(n).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from agent import events as ev
from agent.compaction import summary_message
from agent.messages import (
    Message,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)

INTERRUPTED_RESULT = "The tool call was interrupted before it finished; no result is available."


@dataclass(frozen=True)
class _Node:
    """One conversation entry: a message-producing event, linked to the entry before it."""

    event: ev._Event
    prev: "_Node | None"


class Conversation:
    """Feed it events in log order; `messages()` is what the next model call sends."""

    def __init__(self) -> None:
        self._head: _Node | None = None
        # Conversation as it stood at each checkpoint event, by checkpoint id and by seq.
        self._at_checkpoint: dict[str, _Node | None] = {}
        self._at_seq: dict[int, _Node | None] = {}
        # Heads saved by rewinds, so an undo-rewind can put them back (a stack).
        self._undo: list[_Node | None] = []
        self.turns = 0

    @classmethod
    def from_events(cls, events: Iterable[ev._Event]) -> "Conversation":
        conv = cls()
        for event in events:
            conv.apply(event)
        return conv

    def apply(self, event: ev._Event) -> None:
        """Advance the conversation by one logged event."""
        if isinstance(event, (ev.UserMessage, ev.AssistantMessage, ev.ToolResult)):
            self._head = _Node(event, self._head)
            if isinstance(event, ev.UserMessage):
                self.turns = max(self.turns, event.turn)
        elif isinstance(event, ev.Checkpoint):
            self._at_checkpoint[event.id] = self._head
            if event.seq is not None:
                self._at_seq[event.seq] = self._head
        elif isinstance(event, ev.Rewind) and event.restore in ("conversation", "both"):
            if event.undo:
                if self._undo:
                    self._head = self._undo.pop()
            else:
                self._undo.append(self._head)
                self._head = self._target(event)
        elif isinstance(event, ev.Compaction):
            self._compact(event)

    def _target(self, event: ev.Rewind) -> _Node | None:
        if event.to_seq is not None and event.to_seq in self._at_seq:
            return self._at_seq[event.to_seq]
        if event.checkpoint in self._at_checkpoint:
            return self._at_checkpoint[event.checkpoint]
        # A rewind to a checkpoint this log never saw (another session's): keep the
        # conversation rather than guess.
        return self._head

    def _compact(self, event: ev.Compaction) -> None:
        """Replace entries logged before `boundary_seq` by one summary message."""
        kept: list[ev._Event] = []
        node = self._head
        # An earlier summary always heads the chain and is itself replaced.
        while (node is not None and not isinstance(node.event, ev.Compaction)
               and (node.event.seq is None or node.event.seq >= event.boundary_seq)):
            kept.append(node.event)
            node = node.prev
        head: _Node | None = _Node(event, None)
        for entry in reversed(kept):
            head = _Node(entry, head)
        self._head = head

    def entries(self) -> list[ev._Event]:
        out: list[ev._Event] = []
        node = self._head
        while node is not None:
            out.append(node.event)
            node = node.prev
        out.reverse()
        return out

    def messages(self) -> list[Message]:
        """The conversation as alternating user/assistant messages, repaired to be sendable."""
        return build_messages(self.entries())

    def message_seqs(self) -> tuple[list[Message], list[int | None]]:
        """`messages()` and, for each message, the log seq of the first event in it."""
        seqs: list[int | None] = []
        return build_messages(self.entries(), seqs), seqs

    def can_undo(self) -> bool:
        return bool(self._undo)


def build_messages(entries: list[ev._Event], seqs: list[int | None] | None = None) -> list[Message]:
    """Turn conversation entries into a valid message list.

    Consecutive user-side entries merge into one user message; every tool_use gets a result
    (a call whose result never arrived, because the turn was interrupted or rewound, gets an
    error result saying so), and results without a matching call are dropped.
    """
    out: list[Message] = []
    starts: list[int | None] = []  # seq of the first entry of each message in `out`
    pending: list[str] = []  # tool_use ids of the last assistant message still without result
    current: list[int | None] = [None]  # seq of the entry being converted

    def user_blocks() -> list:
        if out and out[-1].role == "user":
            return out[-1].content
        msg = Message(role="user", content=[])
        out.append(msg)
        starts.append(current[0])
        return msg.content

    def close_pending() -> None:
        if pending:
            blocks = user_blocks()
            for tid in pending:
                blocks.insert(
                    _results_end(blocks),
                    ToolResultBlock(tool_use_id=tid, content=INTERRUPTED_RESULT, is_error=True),
                )
            pending.clear()

    for entry in entries:
        # A summary stands where the entries it replaced began.
        current[0] = entry.boundary_seq if isinstance(entry, ev.Compaction) else entry.seq
        if isinstance(entry, ev.Compaction):
            close_pending()
            user_blocks().extend(summary_message(entry.summary).content)
        elif isinstance(entry, ev.UserMessage):
            close_pending()
            user_blocks().append(TextBlock(text=entry.text))
        elif isinstance(entry, ev.AssistantMessage):
            close_pending()
            content = [b for b in entry.message.content if not _is_empty(b)]
            if not content:
                continue
            if out and out[-1].role == "assistant":
                out[-1].content.extend(content)
            else:
                out.append(Message(role="assistant", content=list(content)))
                starts.append(entry.seq)
            pending.extend(b.id for b in content if isinstance(b, ToolUseBlock))
        elif isinstance(entry, ev.ToolResult):
            if entry.tool_use_id not in pending:
                continue
            pending.remove(entry.tool_use_id)
            blocks = user_blocks()
            blocks.insert(
                _results_end(blocks),
                ToolResultBlock(
                    tool_use_id=entry.tool_use_id, content=entry.content, is_error=entry.is_error
                ),
            )
    close_pending()
    # An API conversation starts with a user message.
    while out and out[0].role != "user":
        out.pop(0)
        starts.pop(0)
    keep = [i for i, m in enumerate(out) if m.content]
    if seqs is not None:
        seqs[:] = [starts[i] for i in keep]
    return [out[i] for i in keep]


def _results_end(blocks: list) -> int:
    """Index after the leading tool_result blocks: results must precede text in a user message."""
    i = 0
    while i < len(blocks) and isinstance(blocks[i], ToolResultBlock):
        i += 1
    return i


def _is_empty(block) -> bool:
    return isinstance(block, TextBlock) and not block.text
