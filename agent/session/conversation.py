"""The conversation the model sees, rebuilt from the session's events.

The log is append-only; rewinds and compactions are events too. To rebuild cheaply the
conversation is a persistent (immutable, shared-tail) list of entries: a checkpoint remembers the
list as it was with one pointer, a rewind puts that pointer back, an undo-rewind restores the
pointer saved by the rewind. Replaying a log of n events is O(n).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agent import events as ev
from agent.context.compaction import summary_message
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

    event: ev.Event
    prev: _Node | None


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
        # Messages folded so far for the current head; dropped when the head jumps.
        self._builder: _Builder | None = _Builder()

    @classmethod
    def from_events(cls, events: Iterable[ev.Event]) -> Conversation:
        conv = cls()
        for event in events:
            conv.apply(event)
        return conv

    def apply(self, event: ev.Event) -> None:
        """Advance the conversation by one logged event."""
        if isinstance(event, (ev.UserMessage, ev.AssistantMessage, ev.ToolResult)):
            self._head = _Node(event, self._head)
            if self._builder is not None:
                self._builder.add(event)
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
            self._builder = None
        elif isinstance(event, ev.Compaction):
            self._compact(event)
            self._builder = None

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
        kept: list[ev.Event] = []
        node = self._head
        # An earlier summary always heads the chain and is itself replaced.
        while (
            node is not None
            and not isinstance(node.event, ev.Compaction)
            and (node.event.seq is None or node.event.seq >= event.boundary_seq)
        ):
            kept.append(node.event)
            node = node.prev
        head: _Node | None = _Node(event, None)
        for entry in reversed(kept):
            head = _Node(entry, head)
        self._head = head

    def entries(self) -> list[ev.Event]:
        out: list[ev.Event] = []
        node = self._head
        while node is not None:
            out.append(node.event)
            node = node.prev
        out.reverse()
        return out

    def _folded(self) -> _Builder:
        if self._builder is None:
            self._builder = _Builder()
            for entry in self.entries():
                self._builder.add(entry)
        return self._builder

    def messages(self) -> list[Message]:
        """The conversation as alternating user/assistant messages, repaired to be sendable."""
        return self._folded().result()

    def message_seqs(self) -> tuple[list[Message], list[int | None]]:
        """`messages()` and, for each message, the log seq of the first event in it."""
        seqs: list[int | None] = []
        return self._folded().result(seqs), seqs


class _Builder:
    """Folds entries into messages, one at a time, so a growing conversation costs O(1) per entry.

    Consecutive user-side entries merge into one user message; every tool_use gets a result
    (a call whose result never arrived, because the turn was interrupted or rewound, gets an
    error result saying so), and results without a matching call are dropped. Only the last
    message is ever changed by a later entry, so `result` copies just that one.
    """

    def __init__(self) -> None:
        self.out: list[Message] = []
        self.starts: list[int | None] = []  # seq of the first entry of each message
        self.pending: list[str] = []  # tool_use ids of the last assistant message without result

    def _user_blocks(self, seq: int | None) -> list:
        if self.out and self.out[-1].role == "user":
            return self.out[-1].content
        msg = Message.model_construct(role="user", content=[])
        self.out.append(msg)
        self.starts.append(seq)
        return msg.content

    def _close_pending(self, seq: int | None) -> None:
        if self.pending:
            _add_interrupted(self._user_blocks(seq), self.pending)
            self.pending = []

    def add(self, entry: ev.Event) -> None:
        if isinstance(entry, ev.Compaction):
            # A summary stands where the entries it replaced began.
            self._close_pending(entry.boundary_seq)
            self._user_blocks(entry.boundary_seq).extend(summary_message(entry.summary).content)
        elif isinstance(entry, ev.UserMessage):
            self._close_pending(entry.seq)
            self._user_blocks(entry.seq).append(TextBlock.model_construct(text=entry.text))
        elif isinstance(entry, ev.AssistantMessage):
            self._close_pending(entry.seq)
            content = [b for b in entry.message.content if not _is_empty(b)]
            if not content:
                return
            if self.out and self.out[-1].role == "assistant":
                self.out[-1].content.extend(content)
            else:
                self.out.append(Message.model_construct(role="assistant", content=list(content)))
                self.starts.append(entry.seq)
            self.pending.extend(b.id for b in content if isinstance(b, ToolUseBlock))
        elif isinstance(entry, ev.ToolResult):
            if entry.tool_use_id not in self.pending:
                return
            self.pending.remove(entry.tool_use_id)
            blocks = self._user_blocks(entry.seq)
            blocks.insert(
                _results_end(blocks),
                ToolResultBlock.model_construct(
                    tool_use_id=entry.tool_use_id,
                    content=entry.content,
                    is_error=entry.is_error,
                    images=list(entry.images),
                ),
            )

    def result(self, seqs: list[int | None] | None = None) -> list[Message]:
        out = list(self.out)
        starts = list(self.starts)
        if out:
            last = out[-1]
            out[-1] = Message.model_construct(role=last.role, content=list(last.content))
        if self.pending:
            if not out or out[-1].role != "user":
                out.append(Message.model_construct(role="user", content=[]))
                starts.append(None)
            _add_interrupted(out[-1].content, self.pending)
        # An API conversation starts with a user message.
        first = next((i for i, m in enumerate(out) if m.role == "user"), len(out))
        keep = [i for i in range(first, len(out)) if out[i].content]
        if seqs is not None:
            seqs[:] = [starts[i] for i in keep]
        return [out[i] for i in keep]


def _add_interrupted(blocks: list, pending: list[str]) -> None:
    for tid in pending:
        blocks.insert(
            _results_end(blocks),
            ToolResultBlock.model_construct(
                tool_use_id=tid, content=INTERRUPTED_RESULT, is_error=True
            ),
        )


def _results_end(blocks: list) -> int:
    """Index after the leading tool_result blocks: results must precede text in a user message."""
    i = 0
    while i < len(blocks) and isinstance(blocks[i], ToolResultBlock):
        i += 1
    return i


def _is_empty(block) -> bool:
    return isinstance(block, TextBlock) and not block.text
