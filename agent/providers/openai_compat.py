"""Any Chat Completions endpoint (OpenAI, DeepSeek's API, vLLM, SGLang) with the `openai` SDK.

Streamed by default (`stream_options.include_usage` for the token counts); tool calls arrive in
pieces keyed by `index` and are assembled here; `reasoning_content` (DeepSeek, vLLM) becomes a
ThinkingBlock without signature. Retrying and error wording are shared (`retry.py`). The SDK is
imported in the constructor, never at module import.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any, Literal

from agent.errors import ProviderError
from agent.events import TextDelta, ThinkingDelta
from agent.messages import Message, TextBlock, ThinkingBlock, ToolUseBlock
from agent.providers import convert
from agent.providers.base import ModelRequest, ModelResponse, StreamItem, TokenUsage
from agent.providers.catalogue import ModelInfo, openai_info
from agent.providers.retry import (
    ErrorContext,
    RetryPolicy,
    Transient,
    sdk_errors,
    stream_with_retries,
)

# Chat Completions finish reasons in the Messages API's vocabulary (ModelResponse.stop_reason).
STOP_REASONS = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}
# Local servers (vLLM, SGLang) take any key; the SDK insists on having one.
PLACEHOLDER_KEY = "EMPTY"


class OpenAICompatProvider:
    """`openai:MODEL` against `base_url` (or OPENAI_BASE_URL), streamed unless `stream=False`."""

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 600.0,
        stream: bool = True,
        send_reasoning: bool = False,
        context_window: int | None = None,
        max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens",
    ) -> None:
        """`send_reasoning` sends earlier turns' reasoning back as `reasoning_content` (off by
        default: DeepSeek's API wants it dropped). `max_tokens_param` names the output limit
        field (OpenAI's newest models want max_completion_tokens; vLLM and DeepSeek take
        max_tokens)."""
        import openai  # lazy: importing the SDK is slow

        self._sdk = openai
        client_args: dict[str, Any] = {"max_retries": 0, "timeout": timeout_s}
        if base_url:
            client_args["base_url"] = base_url
        if api_key:
            client_args["api_key"] = api_key
        elif not os.environ.get("OPENAI_API_KEY"):
            if not (base_url or os.environ.get("OPENAI_BASE_URL")):
                raise ProviderError(
                    "No OpenAI API key: set OPENAI_API_KEY (or pass api_key), or point "
                    "--base-url / OPENAI_BASE_URL at a server that needs none.",
                    kind="auth",
                )
            client_args["api_key"] = PLACEHOLDER_KEY
        self._client = openai.AsyncOpenAI(**client_args)
        self.model = model
        self.info: ModelInfo = openai_info(model, context_window=context_window)
        self.context_window = self.info.context_window
        self.retry = retry or RetryPolicy()
        self.streaming = stream
        self.send_reasoning = send_reasoning
        self.max_tokens_param = max_tokens_param
        self._ctx = ErrorContext(
            provider=f"OpenAI-compatible server at {self._client.base_url}",
            model=model,
            key_env="OPENAI_API_KEY",
            model_hint=(
                "Pick a model this server serves with --model openai:MODEL "
                "or the `model` key in settings."
            ),
        )

    # --- Provider protocol -------------------------------------------------------------------

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamItem]:
        """Stream deltas (and Retry notices), ending with one complete ModelResponse."""
        body = self.request_body(request)
        return stream_with_retries(lambda: self._attempt(body), self.retry, self._ctx)

    async def count_tokens(self, request: ModelRequest) -> int | None:
        """Chat Completions has no counting endpoint: the context manager estimates."""
        return None

    def cost(self, usage: TokenUsage) -> float:
        """US dollars at this model's prices (0.0 for models we have no prices for)."""
        return self.info.prices.cost(usage)

    # --- request -----------------------------------------------------------------------------

    def request_body(self, request: ModelRequest) -> dict[str, Any]:
        """The Chat Completions body for `request` (thinking budget and context management do
        not apply: the context manager already edited `messages`)."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": convert.openai_messages(
                request.system, request.messages, send_reasoning=self.send_reasoning
            ),
            self.max_tokens_param: min(request.max_tokens, self.info.max_output_tokens),
        }
        if request.tools:
            body["tools"] = [tool.openai_spec() for tool in request.tools]
        if self.streaming:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    # --- one attempt -------------------------------------------------------------------------

    async def _attempt(self, body: dict[str, Any]) -> AsyncIterator[StreamItem]:
        assembler = ChunkAssembler(self.model)
        with sdk_errors(self._sdk, self._ctx):
            if self.streaming:
                chunks = await self._client.chat.completions.create(**body)
                async with chunks:
                    async for chunk in chunks:
                        for item in assembler.feed(chunk.to_dict(warnings=False)):
                            yield item
            else:
                completion = await self._client.chat.completions.create(**body)
                for item in assembler.feed_complete(completion.to_dict(warnings=False)):
                    yield item
        if assembler.finish_reason is None:
            raise Transient("the stream ended without a finish_reason", kind="incomplete")
        yield assembler.response()


class ChunkAssembler:
    """Chat Completions chunks (as dicts) -> deltas and one final message."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self._text: list[str] = []
        self._reasoning: list[str] = []
        # index -> {"id", "name", "args": [pieces]}
        self._calls: dict[int, dict[str, Any]] = {}

    def feed(self, chunk: dict[str, Any]) -> list[StreamItem]:
        """Take one streamed chunk; return the deltas to show for it."""
        self.model = chunk.get("model") or self.model
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        items: list[StreamItem] = []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            self._take_text(delta, items)
            for piece in delta.get("tool_calls") or []:
                call = self._calls.setdefault(
                    piece.get("index", 0), {"id": None, "name": "", "args": []}
                )
                call["id"] = piece.get("id") or call["id"]
                function = piece.get("function") or {}
                call["name"] = function.get("name") or call["name"]
                call["args"].append(function.get("arguments") or "")
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return items

    def _take_text(self, part: dict[str, Any], items: list[StreamItem]) -> None:
        """The reasoning and text of a streamed delta or of a whole message."""
        # vLLM has called the field both `reasoning_content` and `reasoning`.
        reasoning = part.get("reasoning_content") or part.get("reasoning")
        if reasoning:
            self._reasoning.append(reasoning)
            items.append(ThinkingDelta(text=reasoning))
        if part.get("content"):
            self._text.append(part["content"])
            items.append(TextDelta(text=part["content"]))

    def feed_complete(self, completion: dict[str, Any]) -> list[StreamItem]:
        """Take a non-streamed completion whole; return its text as deltas too."""
        self.model = completion.get("model") or self.model
        self.usage = completion.get("usage")
        items: list[StreamItem] = []
        for choice in (completion.get("choices") or [])[:1]:
            message = choice.get("message") or {}
            self._take_text(message, items)
            for index, call in enumerate(message.get("tool_calls") or []):
                function = call.get("function") or {}
                self._calls[index] = {
                    "id": call.get("id"),
                    "name": function.get("name") or "",
                    "args": [function.get("arguments") or ""],
                }
            self.finish_reason = choice.get("finish_reason")
        return items

    def message(self) -> Message:
        content: list[Any] = []
        if self._reasoning:
            content.append(ThinkingBlock(thinking="".join(self._reasoning), signature=None))
        if self._text:
            content.append(TextBlock(text="".join(self._text)))
        for index, call in sorted(self._calls.items()):
            tool_input, error = convert.parse_tool_input("".join(call["args"]))
            content.append(
                ToolUseBlock(
                    id=call["id"] or f"call_{index}",
                    name=call["name"],
                    input=tool_input,
                    input_error=error,
                )
            )
        return Message(role="assistant", content=content)

    def response(self) -> ModelResponse:
        reason = STOP_REASONS.get(self.finish_reason or "", self.finish_reason)
        if self._calls and reason == "end_turn":
            # Some servers finish a tool-calling turn with "stop"; the calls still stand.
            reason = "tool_use"
        return ModelResponse(
            message=self.message(),
            stop_reason=reason,
            usage=convert.openai_usage(self.usage),
            model=self.model,
        )
