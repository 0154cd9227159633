"""Model providers, chosen by a spec: `anthropic:ID`, `openai:ID`, `local:PATH`, `scripted:FILE`.

Nothing here imports an SDK or torch at module import; each provider imports what it needs when
it is constructed, so `godwit --help` stays fast.
"""

from __future__ import annotations

from typing import Any

from agent.errors import ConfigError, UsageError
from agent.providers.base import Provider

KINDS = ("anthropic", "openai", "local", "scripted")


def parse_spec(spec: str) -> tuple[str, str]:
    """`"anthropic:claude-sonnet-4-5"` -> ("anthropic", "claude-sonnet-4-5"); a bare `claude-…`
    id or alias (`sonnet`, `opus`, `haiku`, as in Claude Code) means anthropic, and a bare
    `anthropic` its default model. Aliases stay aliases here (the Anthropic provider resolves
    them from the SDK's model list). Raises ConfigError."""
    from agent.providers.aliases import FAMILIES

    spec = (spec or "").strip()
    if not spec:
        raise ConfigError("Empty model spec; use e.g. anthropic:sonnet or openai:MODEL.")
    if spec.startswith("claude-") or spec.lower() in FAMILIES:
        return "anthropic", spec
    kind, sep, rest = spec.partition(":")
    if kind == "anthropic" and not rest:
        from agent.providers.catalogue import DEFAULT_CLAUDE_MODEL

        return kind, DEFAULT_CLAUDE_MODEL
    if kind not in KINDS or not sep:
        raise ConfigError(
            f"Unknown model spec {spec!r}: expected anthropic:ID, openai:ID, local:PATH or "
            "scripted:FILE (or a bare claude-… id, or sonnet, opus, haiku)."
        )
    if not rest.strip():
        what = (
            "a checkpoint folder"
            if kind == "local"
            else "a file"
            if kind == "scripted"
            else "a model id"
        )
        raise ConfigError(f"Model spec {spec!r} names no {what} after '{kind}:'.")
    return kind, rest.strip()


def make_provider(
    spec: str, *, base_url: str | None = None, api_key: str | None = None, **options: Any
) -> Provider:
    """The provider for `spec`.

    `base_url` and `api_key` override ANTHROPIC_* / OPENAI_* (which the SDKs read themselves);
    `options` go to the provider's constructor (e.g. retry=RetryPolicy(...), max_retries=4,
    timeout_s, thinking_mode, send_reasoning, stream, context_window). Raises ConfigError for
    a bad spec or option, UsageError when the local provider is not available, and
    ProviderError(kind="auth") when no API key can be found."""
    kind, target = parse_spec(spec)
    if "max_retries" in options:
        from agent.providers.retry import RetryPolicy

        max_retries = options.pop("max_retries")
        if max_retries is not None:
            base = options.get("retry") or RetryPolicy()
            options["retry"] = base.model_copy(update={"max_retries": int(max_retries)})
    if kind != "scripted":
        from agent.providers.options import validated

        options = validated(kind, spec, options)
    if kind == "anthropic":
        from agent.providers.anthropic import AnthropicProvider

        return AnthropicProvider(target, api_key=api_key, base_url=base_url, **options)
    if kind == "openai":
        from agent.providers.openai_compat import OpenAICompatProvider

        return OpenAICompatProvider(target, api_key=api_key, base_url=base_url, **options)
    if kind == "scripted":
        from agent.providers.scripted import ScriptedProvider

        return ScriptedProvider.from_file(target)
    try:
        from agent.providers.local import LocalProvider
    except ImportError as err:
        raise UsageError(
            f"The local provider is not available ({err}). Install the local extra "
            "(pip install 'godwit[local]') or choose anthropic:ID / openai:ID."
        ) from err
    return LocalProvider(target, **options)


__all__ = ["KINDS", "Provider", "make_provider", "parse_spec"]
