"""What we know about each model: context window, output limit, thinking mode, prices, retirement.

Features follow the chosen model (DESIGN.md: Claude models come and go), so the providers ask
this table instead of hard-coding one model. Unknown ids get safe defaults and never crash.
Prices are US dollars per million tokens.
"""

from __future__ import annotations

import re
import warnings
from typing import Literal

from pydantic import BaseModel, Field

from agent.providers.base import TokenUsage

ThinkingMode = Literal["enabled", "adaptive"]

# The Claude model used when a spec names none (`anthropic`, or no `model` setting at all): an
# alias that agent.providers.aliases resolves to the newest Sonnet the installed SDK lists.
DEFAULT_CLAUDE_MODEL = "sonnet"
# The beta header under which Claude accepts a `context_management` body.
CONTEXT_MANAGEMENT_BETA = "context-management-2025-06-27"


class Prices(BaseModel):
    """US dollars per million tokens."""

    input: float = 0.0
    output: float = 0.0
    # Writing the 5-minute prompt cache (1.25x input at Anthropic).
    cache_write: float = 0.0
    # Reading the prompt cache (0.1x input at Anthropic).
    cache_read: float = 0.0

    def cost(self, usage: TokenUsage) -> float:
        """Dollars for one call's usage."""
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_creation_input_tokens * self.cache_write
            + usage.cache_read_input_tokens * self.cache_read
        ) / 1_000_000


class ModelInfo(BaseModel):
    """The facts a provider needs about one model."""

    id: str
    # Tokens the model attends to (prompt + output).
    context_window: int = 200_000
    # Largest max_tokens the model accepts.
    max_output_tokens: int = 64_000
    # How extended thinking is requested: a fixed budget ("enabled") or "adaptive" (newer
    # Claude models, where "enabled" is deprecated). None: the model does not think.
    thinking: ThinkingMode | None = "enabled"
    prices: Prices = Field(default_factory=Prices)
    # ISO date the provider retires the model, when announced.
    retires: str | None = None


def _claude_prices(input_price: float, output_price: float) -> Prices:
    # Anthropic's rule: 5-minute cache writes cost 1.25x input, cache reads 0.1x input.
    return Prices(
        input=input_price,
        output=output_price,
        cache_write=input_price * 1.25,
        cache_read=input_price * 0.1,
    )


# Per family and generation; dated snapshot ids ("claude-sonnet-4-5-20250929") map to their
# family by prefix. Entries after 4.5 are our best knowledge of the published list prices.
_CLAUDE: dict[str, ModelInfo] = {
    m.id: m
    for m in [
        ModelInfo(id="claude-sonnet-4-5", prices=_claude_prices(3, 15), retires="2026-11-30"),
        ModelInfo(id="claude-opus-4-5", prices=_claude_prices(5, 25), retires="2027-01-22"),
        ModelInfo(id="claude-haiku-4-5", prices=_claude_prices(1, 5)),
        ModelInfo(id="claude-sonnet-4-6", prices=_claude_prices(3, 15), thinking="adaptive"),
        ModelInfo(id="claude-opus-4-6", prices=_claude_prices(5, 25), thinking="adaptive"),
        ModelInfo(id="claude-opus-4-7", prices=_claude_prices(5, 25), thinking="adaptive"),
        ModelInfo(id="claude-opus-4-8", prices=_claude_prices(5, 25), thinking="adaptive"),
        ModelInfo(id="claude-sonnet-5", prices=_claude_prices(3, 15), thinking="adaptive"),
        ModelInfo(id="claude-sonnet-5-5", prices=_claude_prices(3, 15), thinking="adaptive"),
        ModelInfo(id="claude-opus-5", prices=_claude_prices(5, 25), thinking="adaptive"),
        ModelInfo(id="claude-opus-5-5", prices=_claude_prices(5, 25), thinking="adaptive"),
        ModelInfo(id="claude-haiku-5-5", prices=_claude_prices(1, 5), thinking="adaptive"),
        ModelInfo(id="claude-sonnet-4", prices=_claude_prices(3, 15)),
        ModelInfo(id="claude-opus-4-1", prices=_claude_prices(15, 75), max_output_tokens=32_000),
        ModelInfo(id="claude-opus-4", prices=_claude_prices(15, 75), max_output_tokens=32_000),
        ModelInfo(id="claude-3-7-sonnet", prices=_claude_prices(3, 15)),
    ]
}

# OpenAI-compatible models we know prices for; anything else costs 0.0 (self-hosted vLLM ...).
_OPENAI: dict[str, ModelInfo] = {
    m.id: m
    for m in [
        ModelInfo(
            id="deepseek-chat",
            context_window=128_000,
            max_output_tokens=8_000,
            thinking=None,
            prices=Prices(input=0.28, output=0.42, cache_read=0.028),
        ),
        ModelInfo(
            id="deepseek-reasoner",
            context_window=128_000,
            max_output_tokens=64_000,
            thinking=None,
            prices=Prices(input=0.28, output=0.42, cache_read=0.028),
        ),
    ]
}

DEFAULT_OPENAI_CONTEXT = 128_000

_SNAPSHOT = re.compile(r"-\d{8}$")
_VERSION = re.compile(r"^claude-(?:[a-z]+-)?(\d+)(?:-(\d))?(?:-[a-z]+)?$")


def _claude_family(model: str) -> str:
    """`claude-sonnet-4-5-20250929` -> `claude-sonnet-4-5`; `...-latest` likewise."""
    model = _SNAPSHOT.sub("", model)
    return model.removesuffix("-latest")


def _guess_thinking(family: str) -> ThinkingMode:
    """Thinking mode of a Claude id not in the table, from its version number.

    Models from 4.6 on take "adaptive" (the SDK warns that "enabled" is deprecated there);
    an id we cannot read is assumed new."""
    match = _VERSION.match(family)
    if not match:
        return "adaptive"
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    return "adaptive" if (major, minor) >= (4, 6) else "enabled"


def claude_info(model: str) -> ModelInfo:
    """Facts about a Claude model id (any id works; unknown ids get defaults and no prices)."""
    family = _claude_family(model)
    known = _CLAUDE.get(family)
    if known is not None:
        return known.model_copy(update={"id": model})
    return ModelInfo(id=model, thinking=_guess_thinking(family))


def openai_info(model: str, *, context_window: int | None = None) -> ModelInfo:
    """Facts about a Chat Completions model (128K context and no prices unless known)."""
    known = _OPENAI.get(model)
    info = (
        known.model_copy(update={"id": model})
        if known
        else ModelInfo(id=model, context_window=DEFAULT_OPENAI_CONTEXT, thinking=None)
    )
    if context_window is not None:
        info = info.model_copy(update={"context_window": context_window})
    return info


class ModelDeprecationWarning(UserWarning):
    """The chosen model is announced for retirement (shown once per model per process)."""


def warn_if_retiring(info: ModelInfo) -> str | None:
    """Issue a ModelDeprecationWarning for a retiring model; returns the notice (or None).

    Called once per provider, not per call; Python's default warning filter then shows a given
    notice once per process."""
    if not info.retires:
        return None
    from datetime import date

    when = "was retired" if date.fromisoformat(str(info.retires)) <= date.today() else "retires"
    notice = (
        f"Model {info.id} {when} on {info.retires} (Anthropic's deprecation schedule); pick a "
        "newer one with --model anthropic:claude-sonnet-5-5 or the `model` key in settings."
    )
    warnings.warn(notice, ModelDeprecationWarning, stacklevel=3)
    return notice
