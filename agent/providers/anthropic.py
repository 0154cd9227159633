"""Claude through the Messages API, streamed, with the official `anthropic` SDK.

What is particular to Anthropic lives here: the request body (built-in tool types, prompt-cache
breakpoints, thinking, context management beta) and the assembly of the event stream into one
`ModelResponse`. Retrying and error wording are shared (`retry.py`), and so is conversion
(`convert.py`). The SDK is imported in the constructor: importing it costs over a second, which
`godwit --help` and the listings must not pay.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import AsyncIterator
from typing import Any

from agent.errors import ProviderError
from agent.events import TextDelta, ThinkingDelta
from agent.messages import (
    Message,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
)
from agent.providers import convert
from agent.providers.aliases import resolve
from agent.providers.base import ModelRequest, ModelResponse, StreamItem, TokenUsage
from agent.providers.catalogue import (
    CONTEXT_MANAGEMENT_BETA,
    DEFAULT_CLAUDE_MODEL,
    ModelInfo,
    ThinkingMode,
    claude_info,
    warn_if_retiring,
)
from agent.providers.retry import (
    ErrorContext,
    RetryPolicy,
    Transient,
    sdk_errors,
    stream_with_retries,
)

MIN_THINKING_BUDGET = 1024


class AnthropicProvider:
    """`anthropic:MODEL`: any Claude model id, streamed, retried by `retry.stream_with_retries`."""

    name = "anthropic"

    def __init__(
        self,
        model: str = DEFAULT_CLAUDE_MODEL,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 600.0,
        thinking_mode: ThinkingMode | None = None,
    ) -> None:
        """Raises ProviderError(kind="auth") when no API key is given or in the environment."""
        if not (
            api_key or os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")
        ):
            raise ProviderError(
                "No Anthropic API key: set ANTHROPIC_API_KEY (or pass api_key), "
                "or choose another provider with --model.",
                kind="auth",
            )
        import anthropic  # lazy: see the module docstring

        self._sdk = anthropic
        model = resolve(model)  # sonnet / opus / haiku: the newest the SDK lists
        client_args: dict[str, Any] = {"max_retries": 0, "timeout": timeout_s}
        # Only explicit values: otherwise the SDK reads ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL.
        if api_key:
            client_args["api_key"] = api_key
        if base_url:
            client_args["base_url"] = base_url
        self._client = anthropic.AsyncAnthropic(**client_args)
        self.model = model
        self.info: ModelInfo = _with_sdk_retirement(claude_info(model))
        if thinking_mode is not None:
            self.info = self.info.model_copy(update={"thinking": thinking_mode})
        self.context_window = self.info.context_window
        self.retry = retry or RetryPolicy()
        self._ctx = ErrorContext(
            provider="Anthropic",
            model=model,
            key_env="ANTHROPIC_API_KEY",
            model_hint=(
                "Pick another model with --model anthropic:claude-sonnet-5-5 "
                "or the `model` key in settings."
            ),
        )
        # One notice per model here instead of the SDK's DeprecationWarning on every call.
        self.notice = warn_if_retiring(self.info)

    # --- Provider protocol -------------------------------------------------------------------

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamItem]:
        """Stream deltas (and Retry notices), ending with one complete ModelResponse."""
        body, betas = self.request_body(request)
        return stream_with_retries(lambda: self._attempt(body, betas), self.retry, self._ctx)

    async def count_tokens(self, request: ModelRequest) -> int | None:
        """Input tokens by the API's counting endpoint; None when it cannot answer."""
        import httpx2

        body, betas = self.request_body(request)
        body.pop("max_tokens", None)
        _silence_sdk_deprecation()
        try:
            if betas:
                result = await self._client.beta.messages.count_tokens(**body, betas=betas)
            else:
                result = await self._client.messages.count_tokens(**body)
        except (self._sdk.APIError, httpx2.HTTPError):
            return None
        return result.input_tokens

    def cost(self, usage: TokenUsage) -> float:
        """US dollars at this model's list prices (0.0 when unknown)."""
        return self.info.prices.cost(usage)

    # --- request -----------------------------------------------------------------------------

    def request_body(self, request: ModelRequest) -> tuple[dict[str, Any], list[str]]:
        """The Messages API body for `request` (without `stream`) and the betas it needs."""
        messages = convert.anthropic_messages(request.messages)
        system = [{"type": "text", "text": request.system}] if request.system else []
        tools = [dict(tool.anthropic_spec()) for tool in request.tools]
        convert.place_cache_breakpoints(system, tools, messages)
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if system:
            body["system"] = system
        if tools:
            body["tools"] = tools
        thinking, max_tokens = self._thinking(request)
        body["max_tokens"] = max_tokens
        if thinking is not None:
            body["thinking"] = thinking
        betas: list[str] = []
        if request.context_management is not None:
            body["context_management"] = request.context_management
            betas.append(CONTEXT_MANAGEMENT_BETA)
        return body, betas

    def _thinking(self, request: ModelRequest) -> tuple[dict[str, Any] | None, int]:
        """The `thinking` field and a max_tokens consistent with it."""
        ceiling = self.info.max_output_tokens
        max_tokens = min(request.max_tokens, ceiling)
        if request.thinking_budget is None or self.info.thinking is None:
            return None, max_tokens
        if self.info.thinking == "adaptive":
            return {"type": "adaptive"}, max_tokens
        # A fixed budget must be at least 1024 and below max_tokens: the budget is part of it.
        budget = max(
            MIN_THINKING_BUDGET, min(request.thinking_budget, ceiling - MIN_THINKING_BUDGET)
        )
        if max_tokens <= budget:
            max_tokens = min(ceiling, budget + request.max_tokens)
        return {"type": "enabled", "budget_tokens": budget}, max_tokens

    # --- one attempt -------------------------------------------------------------------------

    async def _attempt(self, body: dict[str, Any], betas: list[str]) -> AsyncIterator[StreamItem]:
        assembler = StreamAssembler(self.model)
        _silence_sdk_deprecation()
        with sdk_errors(self._sdk, self._ctx):
            if betas:
                events = await self._client.beta.messages.create(**body, betas=betas, stream=True)
            else:
                events = await self._client.messages.create(**body, stream=True)
            async with events:
                async for event in events:
                    # warnings=False: block types newer than the SDK's models (compaction,
                    # fallback) are expected; we read them as plain dicts.
                    for item in assembler.feed(event.to_dict(warnings=False)):
                        yield item
        if not assembler.complete:
            # The SDK's own accumulator would hand back this partial message as if it were
            # whole (stop_reason=None); a turn without message_stop is retried instead.
            raise Transient("the stream ended before message_stop", kind="incomplete")
        yield assembler.response()


_SDK_RETIREMENT_WARNING = r"The model '.*' is deprecated and will reach end-of-life"


def _silence_sdk_deprecation() -> None:
    """Hide the SDK's per-call retirement warning: the provider gave its own notice once.

    Checked before each call, not installed once, because `warnings.catch_warnings` (pytest
    uses it around every test) restores the filters it found. Only added when missing, since
    every change to the filters re-arms all "show once" warnings of the process."""
    for action, message, _category, _module, _line in warnings.filters:
        if (
            action == "ignore"
            and message is not None
            and message.pattern == _SDK_RETIREMENT_WARNING
        ):
            return
    warnings.filterwarnings("ignore", message=_SDK_RETIREMENT_WARNING, category=DeprecationWarning)


def _with_sdk_retirement(info: ModelInfo) -> ModelInfo:
    """Fill `retires` from the SDK's own deprecation list when our table does not know it."""
    if info.retires:
        return info
    try:
        from anthropic._data import DEPRECATED_MODELS  # private; absent in other SDK versions
    except ImportError:
        return info
    when = DEPRECATED_MODELS.get(info.id)
    return info.model_copy(update={"retires": when}) if when else info


class StreamAssembler:
    """Turns Messages API stream events (as dicts) into deltas and one final message."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.complete = False
        self.stop_reason: str | None = None
        self.usage: dict[str, Any] = {}
        self.applied_edits: list[dict[str, Any]] = []
        # index -> the block being built: its start dict plus "_parts" (text pieces).
        self._blocks: dict[int, dict[str, Any]] = {}

    def feed(self, event: dict[str, Any]) -> list[StreamItem]:
        """Take one event; return the deltas to show for it."""
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.model = message.get("model") or self.model
            self.usage.update(
                {k: v for k, v in (message.get("usage") or {}).items() if v is not None}
            )
        elif kind == "content_block_start":
            block = dict(event.get("content_block") or {})
            block["_parts"] = []
            self._blocks[event["index"]] = block
            if block.get("type") == "fallback":
                # The reply is served by another model than the one asked for.
                self.model = (block.get("to") or {}).get("model") or self.model
        elif kind == "content_block_delta":
            return self._delta(
                self._blocks.setdefault(event["index"], {"_parts": []}), event["delta"]
            )
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            self.stop_reason = delta.get("stop_reason") or self.stop_reason
            self.usage.update(
                {k: v for k, v in (event.get("usage") or {}).items() if v is not None}
            )
            edits = (event.get("context_management") or {}).get("applied_edits")
            if edits:
                self.applied_edits = list(edits)
        elif kind == "message_stop":
            self.complete = True
        return []

    def _delta(self, block: dict[str, Any], delta: dict[str, Any]) -> list[StreamItem]:
        kind = delta.get("type")
        if kind == "text_delta":
            block["_parts"].append(delta["text"])
            return [TextDelta(text=delta["text"])]
        if kind == "thinking_delta":
            block["_parts"].append(delta["thinking"])
            return [ThinkingDelta(text=delta["thinking"])]
        if kind == "signature_delta":
            block["signature"] = delta["signature"]
        elif kind == "input_json_delta":
            block["_parts"].append(delta.get("partial_json") or "")
        # citations_delta, compaction_delta and future kinds carry nothing we keep.
        return []

    def message(self) -> Message:
        """The blocks received so far, in index order (unknown block types are left out)."""
        content: list[Any] = []
        for _, block in sorted(self._blocks.items()):
            kind, joined = block.get("type"), "".join(block["_parts"])
            if kind == "text":
                text = (block.get("text") or "") + joined
                if text:
                    content.append(TextBlock(text=text))
            elif kind == "thinking":
                content.append(
                    ThinkingBlock(
                        thinking=(block.get("thinking") or "") + joined,
                        signature=block.get("signature") or None,
                    )
                )
            elif kind == "redacted_thinking":
                content.append(RedactedThinkingBlock(data=block.get("data", "")))
            elif kind == "tool_use":
                # Input streams as input_json_delta pieces; a start with no pieces carries it whole.
                if block["_parts"]:
                    tool_input, error = convert.parse_tool_input(joined)
                else:
                    tool_input, error = dict(block.get("input") or {}), None
                content.append(
                    ToolUseBlock(
                        id=block["id"], name=block["name"], input=tool_input, input_error=error
                    )
                )
            # compaction, fallback, server tool blocks: the runtime has no use for them yet.
        return Message(role="assistant", content=content)

    def response(self) -> ModelResponse:
        return ModelResponse(
            message=self.message(),
            stop_reason=self.stop_reason,
            usage=convert.anthropic_usage(self.usage),
            model=self.model,
            applied_edits=self.applied_edits,
        )
