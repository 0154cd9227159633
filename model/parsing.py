"""Incremental parser of DeepSeek-V3.2 completions: reasoning, text and DSML tool calls.

`StreamParser.feed(chunk)` returns events as soon as they are certain: text is released unless its
tail could still be the start of a marker (only such a suffix is held back); a tool call is
released when its `</｜DSML｜invoke>` arrives. Malformed markup never raises: it becomes a
`ParseError` event (and `parse_errors` in `parse_completion`'s result) the agent can report.
No torch, no pydantic: this runs wherever the agent runs.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
THINK_START = "<think>"
THINK_END = "</think>"
DSML = "｜DSML｜"
DSML_OPEN = "<" + DSML
CALLS_START = f"<{DSML}function_calls>"
CALLS_END = f"</{DSML}function_calls>"
INVOKE_END = f"</{DSML}invoke>"

_INVOKE = re.compile(rf'\s*<{DSML}invoke name="([^"]*)">(.*)\Z', re.DOTALL)
_PARAM = re.compile(
    rf'<{DSML}parameter name="([^"]*)"(?: string="(true|false)")?>(.*?)</{DSML}parameter>',
    re.DOTALL,
)


@dataclass
class ReasoningDelta:
    """More reasoning text (inside `<think>` ... `</think>`)."""

    text: str


@dataclass
class TextDelta:
    """More visible answer text."""

    text: str


@dataclass
class ToolCall:
    """One complete tool call in OpenAI format (`arguments` is a JSON string)."""

    name: str
    arguments: str
    id: str = field(default_factory=lambda: "call_" + uuid.uuid4().hex[:24])

    def to_openai(self) -> dict[str, Any]:
        """`{"id", "type": "function", "function": {"name", "arguments"}}`."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass
class ParseError:
    """Markup the parser could not understand; `raw` is the offending text."""

    message: str
    raw: str = ""


Event = ReasoningDelta | TextDelta | ToolCall | ParseError


def _held_suffix(buf: str, markers: tuple[str, ...]) -> int:
    """Length of the longest suffix of `buf` that is a proper prefix of some marker."""
    best = 0
    for m in markers:
        for n in range(min(len(m) - 1, len(buf)), best, -1):
            if buf.endswith(m[:n]):
                best = n
                break
    return best


class StreamParser:
    """Feed completion text in any chunks; get events. Call `finish()` at the end of the stream."""

    def __init__(self, thinking: bool = True):
        self.state = "reasoning" if thinking else "text"
        self._buf = ""
        self._at_start = True  # a model may repeat the prompt's `<think>`; drop it once
        self._pending_ws = ""  # whitespace before a possible tool-call block is held back

    def feed(self, chunk: str) -> list[Event]:
        """Consume `chunk`; return the events it completes."""
        self._buf += chunk
        events: list[Event] = []
        while self._step(events, final=False):
            pass
        return events

    def finish(self) -> list[Event]:
        """End of stream: flush held text and report anything left unterminated."""
        events: list[Event] = []
        while self._step(events, final=True):
            pass
        if self.state == "calls":
            raw, self._buf = self._buf, ""
            events.append(ParseError(f"unterminated {CALLS_START} block (no {CALLS_END})", raw))
        elif self._buf:
            self._emit(events, self._buf)
            self._buf = ""
        if self._pending_ws:
            events.append(TextDelta(self._pending_ws))
            self._pending_ws = ""
        self.state = "done"
        return events

    # -- one transition at a time; returns True when it consumed something and should run again --
    def _step(self, events: list[Event], final: bool) -> bool:
        if self.state == "done":
            self._buf = ""
            return False
        if self._at_start and self.state == "reasoning":
            stripped = self._buf.lstrip()
            if THINK_START.startswith(stripped) and not final and len(stripped) < len(THINK_START):
                return False  # could still be a repeated <think>
            if stripped.startswith(THINK_START):
                self._buf = stripped[len(THINK_START) :]
            self._at_start = False
        if self.state == "reasoning":
            return self._scan(events, (THINK_END, EOS), final)
        if self.state == "text":
            return self._scan(events, (CALLS_START, EOS, DSML_OPEN), final)
        return self._scan_calls(events)

    def _scan(self, events: list[Event], markers: tuple[str, ...], final: bool) -> bool:
        hits = [(self._buf.find(m), -len(m), m) for m in markers if m in self._buf]
        if not hits:
            keep = 0 if final else _held_suffix(self._buf, markers)
            self._emit(events, self._buf[: len(self._buf) - keep])
            self._buf = self._buf[len(self._buf) - keep :]
            return False
        pos, _, marker = min(hits)  # earliest; the longest marker wins a tie
        if marker == DSML_OPEN:
            rest = self._buf[pos:]
            end = rest.find(">", 0, 64)
            if not final and (CALLS_START.startswith(rest) or (end < 0 and len(rest) < 64)):
                self._emit(events, self._buf[:pos])
                self._buf = rest
                return False  # wait until the whole tag (or 64 characters) is here
            tag = rest[: end + 1] if end >= 0 else rest[:64]
            events.append(
                ParseError(f"unknown DSML marker {tag!r} outside a {CALLS_START} block", tag)
            )
            self._emit(events, self._buf[: pos + len(tag)])  # kept as visible text
            self._buf = self._buf[pos + len(tag) :]
            return True
        self._emit(events, self._buf[:pos])
        self._buf = self._buf[pos + len(marker) :]
        if marker == EOS:
            self.state = "done"
        elif marker == THINK_END:
            self.state = "text"
        elif marker == CALLS_START:
            self._pending_ws = ""  # the blank line before a call block is format, not content
            self.state = "calls"
        return True

    def _scan_calls(self, events: list[Event]) -> bool:
        hits = [(self._buf.find(m), m) for m in (INVOKE_END, CALLS_END, EOS) if m in self._buf]
        if not hits:
            return False
        pos, marker = min(hits)
        segment, self._buf = self._buf[:pos], self._buf[pos + len(marker) :]
        if marker == INVOKE_END:
            events.append(_parse_invoke(segment))
            return True
        if segment.strip():
            events.append(
                ParseError(f"unterminated or malformed invoke inside {CALLS_START}", segment)
            )
        if marker == EOS:
            events.append(
                ParseError(f"{CALLS_START} block not closed before end of sentence", segment)
            )
            self.state = "done"
        else:
            self.state = "text"
        return True

    def _emit(self, events: list[Event], text: str) -> None:
        if not text:
            return
        if self.state == "reasoning":
            events.append(ReasoningDelta(text))
            return
        text = self._pending_ws + text
        body = text.rstrip()
        self._pending_ws = text[len(body) :]
        if body:
            events.append(TextDelta(body))


def _parse_invoke(segment: str) -> ToolCall | ParseError:
    """`<｜DSML｜invoke name="f">params...` (its closing tag already removed) -> a tool call."""
    m = _INVOKE.match(segment)
    if not m:
        return ParseError('malformed invoke: expected <｜DSML｜invoke name="...">', segment)
    name, body = m.group(1), m.group(2)
    if not name:
        return ParseError("invoke without a function name", segment)
    args: dict[str, Any] = {}
    pos = 0
    for p in _PARAM.finditer(body):
        if body[pos : p.start()].strip():
            return ParseError(
                f"unexpected text in invoke of {name!r}: {body[pos : p.start()].strip()[:60]!r}",
                segment,
            )
        pos = p.end()
        key, is_string, raw = p.group(1), p.group(2), p.group(3)
        if is_string == "true":
            args[key] = raw
            continue
        try:
            args[key] = json.loads(raw)
        except json.JSONDecodeError as exc:
            if is_string is None:  # no attribute: take it as text rather than fail
                args[key] = raw
                continue
            return ParseError(
                f"parameter {key!r} of {name!r} is not valid JSON ({exc.msg})", segment
            )
    if body[pos:].strip():
        return ParseError(f"unterminated or malformed parameter in invoke of {name!r}", segment)
    return ToolCall(name=name, arguments=json.dumps(args, ensure_ascii=False))


def parse_completion(text: str, thinking: bool = True) -> dict[str, Any]:
    """Parse a whole completion into an OpenAI-style assistant message.

    Returns `{"role": "assistant", "content": str, "reasoning_content": str | None,
    "tool_calls": [OpenAI tool calls], "parse_errors": [str]}`.
    """
    parser = StreamParser(thinking=thinking)
    return collect(parser.feed(text) + parser.finish())


def collect(events: list[Event]) -> dict[str, Any]:
    """Fold a list of events into the message dict `parse_completion` returns."""
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    return {
        "role": "assistant",
        "content": "".join(e.text for e in events if isinstance(e, TextDelta)),
        "reasoning_content": reasoning or None,
        "tool_calls": [e.to_openai() for e in events if isinstance(e, ToolCall)],
        "parse_errors": [e.message for e in events if isinstance(e, ParseError)],
    }
