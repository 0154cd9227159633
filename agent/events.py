"""The one event model: everything that happens in a session is one of these.

The loop yields them; the session log stores them (all but the streaming deltas); the headless
printer, the SDK and the UI consume the same stream. Resume replays the log into the
conversation, so the log is the only source of truth.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic_core import PydanticSerializationError

from agent.messages import Message
from agent.textsafe import safe_text

PermissionMode = Literal["default", "acceptEdits", "plan", "bypassPermissions"]
# How a model call or a step around it failed (ProviderError.kind, plus Godwit's own steps).
ErrorKind = Literal[
    "api",
    "auth",
    "model",
    "incomplete",
    "context",
    "checkpoint",
    "compaction",
    "tool",
    "internal",
    "mcp",  # an MCP server failed to start or died (reported once per server)
    "hook",  # a shell hook or SDK hook callback failed, timed out, or has a message
]
# Who decided a tool call: the permission mode, a rule, the approval callback, a hook, a
# protected path, the bash sandbox, or nobody being there to ask (headless).
DecisionSource = Literal["mode", "rule", "callback", "hook", "headless", "protected", "sandbox"]
CheckpointReason = Literal["turn_start", "before_tool", "before_rewind"]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def clean_text(value: Any) -> Any:
    """`value` with every lone surrogate in its strings (also inside dicts, lists and models)
    replaced by U+FFFD. Such strings cannot be encoded as UTF-8, so the log, the token counter
    and the providers' JSON would all fail on them, every time the session is continued. The
    same object comes back when there was nothing to replace."""
    if isinstance(value, str):
        return safe_text(value)  # the one spelling of agent.textsafe
    if isinstance(value, dict):
        items = [(clean_text(k), clean_text(v)) for k, v in value.items()]
        if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(items, value.items())):
            return value
        return dict(items)
    if isinstance(value, (list, tuple)):
        items = [clean_text(v) for v in value]
        if all(a is b for a, b in zip(items, value)):
            return value
        return type(value)(items)
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            old = getattr(value, name, None)
            new = clean_text(old)
            if new is not old:
                object.__setattr__(value, name, new)  # frozen models too
        return value
    return value


class Event(BaseModel):
    """The base of every event; `type` tells them apart in the log."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _clean_surrogates(self):
        return clean_text(self)

    ts: str = Field(default_factory=now_iso)
    # Position in the session log, assigned when the session records the event (0-based).
    seq: int | None = None

    # Streaming deltas are shown live but never written to the log: the final block is.
    ephemeral: bool = Field(default=False, exclude=True, repr=False)


class SessionStarted(Event):
    type: Literal["session_start"] = "session_start"
    session_id: str
    cwd: str
    model: str
    permission_mode: PermissionMode
    forked_from: str | None = None
    version: str = "0.1.0"


class UserMessage(Event):
    type: Literal["user"] = "user"
    text: str
    turn: int


class TextDelta(Event):
    type: Literal["text_delta"] = "text_delta"
    text: str
    ephemeral: bool = Field(default=True, exclude=True, repr=False)


class ThinkingDelta(Event):
    type: Literal["thinking_delta"] = "thinking_delta"
    text: str
    ephemeral: bool = Field(default=True, exclude=True, repr=False)


class AssistantMessage(Event):
    """A complete model reply (or the partial one kept when a turn was interrupted)."""

    type: Literal["assistant"] = "assistant"
    message: Message
    stop_reason: str | None
    model: str
    turn: int


class ToolCall(Event):
    type: Literal["tool_call"] = "tool_call"
    id: str
    name: str
    input: dict[str, Any]


class PermissionDecision(Event):
    type: Literal["permission"] = "permission"
    tool_use_id: str
    tool: str
    decision: Literal["allow", "deny"]
    reason: str = ""
    source: DecisionSource


class ToolResult(Event):
    type: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    name: str
    content: str
    is_error: bool = False
    # Images the tool returned (an MCP tool's screenshot): {"media_type", "data" (base64)}.
    images: list[dict[str, str]] = Field(default_factory=list)
    # What the call changed, for people (a unified diff numbered as in the file); the model
    # reads `content` only.
    diff: str | None = None


class TokenUsage(BaseModel):
    """Tokens of one model call (or a sum of them), as the providers report them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0


class Usage(Event, TokenUsage):
    """Tokens and cost of one model call, with the session's running totals."""

    type: Literal["usage"] = "usage"
    model: str
    cost_usd: float = 0.0
    session_input_tokens: int = 0
    session_output_tokens: int = 0
    session_cache_read_input_tokens: int = 0
    session_cache_creation_input_tokens: int = 0
    session_cost_usd: float = 0.0
    # True for an interrupted call, whose usage never came: the figures are an estimate.
    estimated: bool = False


class Retry(Event):
    """A model call is being retried: whatever it streamed so far is void."""

    type: Literal["retry"] = "retry"
    attempt: int
    delay_s: float
    reason: str


class Error(Event):
    type: Literal["error"] = "error"
    message: str
    kind: ErrorKind = "api"


class TurnEnd(Event):
    type: Literal["turn_end"] = "turn_end"
    # end_turn, max_turns, max_tokens, refusal, interrupted, error, context_window
    reason: str
    # Model calls made in this turn (Claude Code's `num_turns`; a turn here is one prompt).
    turns: int
    result: str = ""


class FileChange(BaseModel):
    path: str
    status: str = "M"
    added: int = 0
    deleted: int = 0


class Checkpoint(Event):
    type: Literal["checkpoint"] = "checkpoint"
    id: str
    turn: int
    label: str
    reason: CheckpointReason
    files: list[FileChange] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
    # The code snapshot in the checkpoint store; several checkpoints (one per turn, say) can
    # share one snapshot when nothing changed between them.
    code_ref: str | None = None
    created_commit: bool = True


class Rewind(Event):
    """The conversation (and/or code) went back to a checkpoint; `undo` marks an undo-rewind."""

    type: Literal["rewind"] = "rewind"
    checkpoint: str
    restore: Literal["code", "conversation", "both"]
    # The checkpoint event's seq in this log: the conversation is rebuilt as it was there.
    to_seq: int | None = None
    # The snapshot taken of the state before the restore (what undo-rewind brings back).
    saved_checkpoint: str | None = None
    undo: bool = False


class ContextEdit(Event):
    """Old tool results (or thinking) cleared from what the model sees; the log keeps them."""

    type: Literal["context_edit"] = "context_edit"
    # server: Anthropic applied it; client: we applied it to the view we send.
    source: Literal["server", "client"]
    applied_edits: list[dict[str, Any]] = Field(default_factory=list)
    cleared_tool_uses: int = 0
    cleared_input_tokens: int = 0


class Compaction(Event):
    """The conversation before `boundary_seq` is replaced, in what the model sees, by `summary`."""

    type: Literal["compaction"] = "compaction"
    summary: str
    boundary_seq: int
    tokens_before: int = 0
    tokens_after: int = 0
    trigger: Literal["auto", "manual"] = "auto"


class PermissionModeChanged(Event):
    """The permission mode was switched during the session (Shift+Tab in the UI, the SDK)."""

    type: Literal["permission_mode"] = "permission_mode"
    mode: PermissionMode
    previous: PermissionMode


class RuleAdded(Event):
    """A permission rule added for the rest of the session ("allow for the session")."""

    type: Literal["rule_added"] = "rule_added"
    rule: str
    kind: Literal["allow", "deny", "ask"] = "allow"


class ModelChanged(Event):
    """The model was switched during the session (`/model` in the UI, the SDK, or `--model`
    when resuming): the next request goes to it, and a resumed session keeps it."""

    type: Literal["model_changed"] = "model_changed"
    model: str
    previous: str


class Progress(Event):
    """Long work under way (the first snapshot of a large repository, loading a local model's
    shards, compaction): shown as a progress line, never written to the log."""

    type: Literal["progress"] = "progress"
    task: Literal["snapshot", "load", "compaction"]
    message: str
    done: int = 0
    total: int | None = None
    finished: bool = False
    ephemeral: bool = Field(default=True, exclude=True, repr=False)


AnyEvent = Annotated[
    SessionStarted
    | UserMessage
    | TextDelta
    | ThinkingDelta
    | AssistantMessage
    | ToolCall
    | PermissionDecision
    | ToolResult
    | Usage
    | Retry
    | Error
    | TurnEnd
    | Checkpoint
    | Rewind
    | ContextEdit
    | Compaction
    | PermissionModeChanged
    | RuleAdded
    | ModelChanged
    | Progress,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def parse_event(line: str | bytes) -> AnyEvent:
    """One log line back into its event (raises pydantic.ValidationError or ValueError when
    malformed)."""
    try:
        return EVENT_ADAPTER.validate_json(line)
    except ValidationError as exc:
        if exc.errors()[0]["type"] != "json_invalid":
            raise
        # pydantic's parser refuses the escaped lone surrogates that stand for non-UTF-8 file
        # names; Python's json reads them back as the same str os.fsdecode made.
        return EVENT_ADAPTER.validate_python(json.loads(line))


def dump_event(event: Event) -> str:
    """One event as a single JSON line (no trailing newline).

    File names that are not valid UTF-8 reach us as lone surrogates (os.fsdecode); JSON can
    carry them escaped (\\udcff) and gives them back unchanged, so they are never lost."""
    try:
        return event.model_dump_json(exclude_none=False)
    except PydanticSerializationError:
        return json.dumps(event.model_dump(mode="python"), ensure_ascii=True, default=str)
