"""What a provider is: one streaming call from a `ModelRequest` to a `ModelResponse`.

Providers share retry, usage and message-conversion helpers (see `retry.py`, `pricing.py`); a
provider module holds only what differs about its API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from agent.events import Retry, TextDelta, ThinkingDelta, TokenUsage
from agent.messages import Message


class ModelRequest(BaseModel):
    """Everything one model call needs, provider-neutral."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    system: str
    messages: list[Message]
    # tools.base.Tool objects; each provider asks them for its own spec.
    tools: list[Any] = Field(default_factory=list)
    max_tokens: int = 16000
    # Extended thinking budget in tokens; None turns thinking off.
    thinking_budget: int | None = None
    # Anthropic's `context_management` body (sent with its beta header); other providers
    # ignore it because the context manager already applied the policy to `messages`.
    context_management: dict[str, Any] | None = None


class ModelResponse(BaseModel):
    """The complete reply of one model call."""

    message: Message
    # Anthropic's vocabulary: end_turn, tool_use, max_tokens, stop_sequence, refusal,
    # pause_turn, model_context_window_exceeded. Providers map theirs onto it.
    stop_reason: str | None
    usage: TokenUsage = Field(default_factory=TokenUsage)
    model: str
    # Anthropic's context_management.applied_edits, when the server cleared anything.
    applied_edits: list[dict[str, Any]] = Field(default_factory=list)


StreamItem = TextDelta | ThinkingDelta | Retry | ModelResponse


class Provider(Protocol):
    """A model behind an API (or in-process). Two calls and a couple of facts."""

    name: str
    model: str
    # Tokens the model can attend to (prompt + output).
    context_window: int

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamItem]:
        """Stream deltas (and Retry notices), ending with exactly one ModelResponse.

        Raises agent.errors.ProviderError when the call fails after its retries."""

    async def count_tokens(self, request: ModelRequest) -> int | None:
        """Input tokens `request` would use, or None when this provider cannot say."""

    def cost(self, usage: TokenUsage) -> float:
        """US dollars for `usage` at this model's prices (0.0 when unknown)."""


def close_provider(provider: Any) -> None:
    """Let go of what a provider holds beyond its requests (the local provider's share of a
    loaded model). The hook is optional: API providers hold nothing that outlives a call."""
    close = getattr(provider, "close", None)
    if close is not None:
        close()
