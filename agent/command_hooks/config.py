"""The `hooks` key of the settings files, in Claude Code's shape:

    {"hooks": {"PreToolUse": [{"matcher": "Bash|Edit",
                               "hooks": [{"type": "command", "command": "./check.sh",
                                          "timeout": 30}]}]}}

`matcher` is matched against the tool name for PreToolUse and PostToolUse (a plain name matches
exactly, `A|B` either, anything else is a regular expression over the whole name; `*`, `""` or no
matcher match everything), against the source for SessionStart (startup, resume, clear, compact)
and the trigger for PreCompact (manual, auto); other events take no matcher. `timeout` is in
seconds (default 60). Events Claude Code has that Godwit does not raise (SubagentStop,
PermissionRequest, ...) are accepted and never run, so one settings file serves both.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

EVENTS = (
    "PreToolUse",
    "PostToolUse",
    "UserPromptSubmit",
    "Stop",
    "SessionStart",
    "SessionEnd",
    "PreCompact",
    "Notification",
)
DEFAULT_TIMEOUT_S = 60.0


class CommandHook(BaseModel):
    """One shell command run on an event."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["command"] = Field("command", description="Only shell commands are run.")
    command: str = Field(min_length=1, description="Run by bash with the event as JSON on stdin.")
    timeout: float = Field(
        DEFAULT_TIMEOUT_S, gt=0, le=3600, description="Seconds before the command is killed."
    )


class HookMatcher(BaseModel):
    """Commands for the tools (or sources) that `matcher` matches."""

    model_config = ConfigDict(extra="ignore")

    matcher: str = Field("", description="Tool-name pattern; empty or * for all.")
    hooks: list[CommandHook] = Field(default_factory=list)

    @field_validator("matcher", mode="before")
    @classmethod
    def _none_is_all(cls, value: object) -> object:
        return "" if value is None else value

    @field_validator("matcher")
    @classmethod
    def _valid_pattern(cls, value: str) -> str:
        if not _is_plain(value) and value != "*":
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"matcher {value!r} is not a valid pattern ({exc})") from None
        return value

    def matches(self, *names: str) -> bool:
        """Whether any of `names` (a tool's Godwit and Claude Code names) is matched."""
        return any(_matches(self.matcher, n) for n in names)


class HooksConfig(BaseModel):
    """Event name -> matchers. Unknown event names are kept and ignored."""

    model_config = ConfigDict(extra="allow")

    def for_event(self, event: str) -> list[HookMatcher]:
        raw = getattr(self, "__pydantic_extra__", None) or {}
        return [
            m if isinstance(m, HookMatcher) else HookMatcher.model_validate(m)
            for m in raw.get(event, [])
        ]

    @classmethod
    def parse(cls, data: dict | None) -> HooksConfig:
        """Validate every event's matchers (raises pydantic's ValidationError)."""
        data = data or {}
        if not isinstance(data, dict):
            raise TypeError("hooks must be an object of event name: [matchers]")
        parsed: dict[str, list[HookMatcher]] = {}
        for event, matchers in data.items():
            if not isinstance(matchers, list):
                raise TypeError(f"hooks.{event} must be a list of {{matcher, hooks}} objects")
            parsed[event] = [HookMatcher.model_validate(m) for m in matchers]
        return cls(**parsed)


def _is_plain(pattern: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9_\-|]*", pattern))


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _matches(pattern: str, name: str) -> bool:
    if pattern in ("", "*"):
        return True
    if _is_plain(pattern):
        return name in pattern.split("|")
    return bool(_compiled(pattern).fullmatch(name))
