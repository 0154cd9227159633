"""The configuration of context editing and compaction: `Settings.context`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ContextSettings(BaseModel):
    """Context editing and compaction; `Settings.context` is validated into this."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Clear old tool results from what the model sees.")
    trigger_tokens: int = Field(
        100_000,
        ge=1,
        description="Clear once the input passes this many tokens (see trigger_fraction).",
    )
    trigger_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="...or this fraction of the model's window, whichever is smaller, so a "
        "small local window clears early too.",
    )
    keep_tool_uses: int = Field(3, ge=0, description="Most recent tool uses never cleared.")
    clear_at_least_tokens: int = Field(
        20_000,
        ge=0,
        description="Free at least this much per clearing step (or clear nothing), so the "
        "cached prefix is invalidated rarely.",
    )
    exclude_tools: list[str] = Field(
        default_factory=lambda: ["memory"],
        description="Tools whose results are never cleared (the memory tool by default).",
    )
    clear_tool_inputs: bool = Field(
        False, description="Also replace the inputs of cleared calls (large file writes)."
    )
    clear_thinking_keep_turns: int | Literal["all"] = Field(
        1,
        description="With thinking on, Claude keeps thinking blocks of this many recent "
        "assistant turns ('all' keeps every one).",
    )
    compact_at_fraction: float = Field(
        0.8, gt=0, le=1, description="Compact automatically past this fraction of the window."
    )
    compact_keep_last_turns: int = Field(
        2, ge=0, description="User turns kept verbatim after a compaction."
    )
    compact_keep_fraction: float = Field(
        0.25,
        gt=0,
        lt=1,
        description="At most this fraction of the window is kept verbatim after a compaction; "
        "a longer tail is cut between steps of a turn instead.",
    )
    auto_compact: bool = Field(True, description="Compact without being asked.")

    @model_validator(mode="after")
    def _check(self) -> ContextSettings:
        if isinstance(self.clear_thinking_keep_turns, int) and self.clear_thinking_keep_turns < 1:
            raise ValueError("clear_thinking_keep_turns must be at least 1 (or 'all')")
        return self

    def trigger_for(self, context_window: int | None) -> int:
        """The clearing trigger in tokens for a model with `context_window` tokens."""
        if not context_window:
            return self.trigger_tokens
        return min(self.trigger_tokens, int(context_window * self.trigger_fraction))

    def should_compact(self, input_tokens: int, context_window: int) -> bool:
        """True when automatic compaction is on and `input_tokens` passed its threshold."""
        return self.auto_compact and input_tokens >= self.compact_at_fraction * context_window
