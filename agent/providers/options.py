"""One options model per provider: what `provider_options` (settings) and `make_provider(...)`
may set for it, validated before the provider is built so a wrong key is a clear error."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.errors import ConfigError
from agent.providers.catalogue import ThinkingMode
from agent.providers.retry import RetryPolicy


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _HostedOptions(_Options):
    retry: RetryPolicy | None = Field(None, description="Retries of failed calls.")
    timeout_s: float | None = Field(None, gt=0, description="Seconds one call may take.")


class AnthropicOptions(_HostedOptions):
    thinking_mode: ThinkingMode | None = Field(
        None, description="enabled or adaptive thinking (default: what the model supports)."
    )


class OpenAIOptions(_HostedOptions):
    stream: bool | None = Field(None, description="Stream the reply (default on).")
    send_reasoning: bool | None = Field(
        None, description="Send reasoning_content back in later requests."
    )
    context_window: int | None = Field(None, ge=1, description="The model's window in tokens.")
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] | None = Field(
        None, description="The name the endpoint wants for the output limit."
    )


class LocalOptions(_Options):
    device: str | None = Field(None, description="cuda or cpu (default: cuda when available).")
    thinking: bool | None = Field(None, description="Let the model think before answering.")
    max_new_tokens: int | None = Field(None, ge=1, description="Output tokens per call at most.")


OPTIONS: dict[str, type[_Options]] = {
    "anthropic": AnthropicOptions,
    "openai": OpenAIOptions,
    "local": LocalOptions,
}


def validated(kind: str, spec: str, options: dict[str, Any]) -> dict[str, Any]:
    """`options` checked against the provider's model; only the keys given are returned, so the
    provider's own defaults apply to the rest. Raises ConfigError."""
    model = OPTIONS[kind]
    try:
        parsed = model.model_validate(options)
    except ValidationError as exc:
        unknown = sorted(str(e["loc"][0]) for e in exc.errors() if e["type"] == "extra_forbidden")
        if unknown:
            raise ConfigError(
                f"Option(s) {', '.join(unknown)} do not apply to model {spec!r}."
            ) from exc
        errs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"Invalid provider options for {spec!r}: {errs}") from exc
    return {name: getattr(parsed, name) for name in parsed.model_fields_set}
