"""Retrying model calls, the same way for every provider, in the open.

The SDKs' own retries are switched off (max_retries=0) so that every retry is ours: it honours
`retry-after`, it covers streams that break half way (which the SDKs do not retry), and it is
announced with an `agent.events.Retry` item so that consumers discard the partial deltas of the
failed attempt. A provider turns each failure into either `Transient` (try again) or a final
`ProviderError`, through `translate_sdk_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import Any

from pydantic import BaseModel, Field

from agent.errors import ModelUnavailable, ProviderError
from agent.events import Retry
from agent.providers.base import StreamItem

# 408 timeout, 409 conflict (lock contention), 429 rate limit, 5xx server, 529 overloaded.
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
# Error types that mean "the service had a moment": an `error` event mid-stream carries these.
TRANSIENT_ERROR_TYPES = frozenset(
    {
        "overloaded_error",
        "api_error",
        "rate_limit_error",
        "timeout_error",
        "server_error",
        "internal_error",
        "service_unavailable",
    }
)


class RetryPolicy(BaseModel):
    """How often and how patiently a failed model call is tried again."""

    # Retries after the first attempt (so max_retries=4 means at most 5 attempts).
    max_retries: int = Field(default=4, ge=0)
    # Backoff before retry n (1-based) is base_delay_s * 2**(n-1), with jitter, capped.
    base_delay_s: float = Field(default=1.0, ge=0)
    max_delay_s: float = Field(default=60.0, ge=0)
    # Each backoff is scaled by a random factor in [1 - jitter, 1 + jitter] so that many
    # clients hit by the same outage do not come back in lockstep.
    jitter: float = Field(default=0.25, ge=0, le=1)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (1-based).

        A server's retry-after wins (it knows when capacity returns), capped at max_delay_s."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay_s)
        backoff = self.base_delay_s * 2 ** (retry - 1)
        backoff *= 1 + self.jitter * (2 * random.random() - 1)
        return min(backoff, self.max_delay_s)


class Transient(Exception):
    """One attempt failed in a way another attempt may not: retry it."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        kind: str = "api",
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.kind = kind


def parse_retry_after(
    headers: Mapping[str, str] | None, *, now: float | None = None
) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms`, or `retry-after` as seconds or an
    HTTP date. None when absent or unreadable."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    if (ms := lowered.get("retry-after-ms")) is not None:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


class ErrorContext(BaseModel):
    """Who was being called, for error messages a person can act on."""

    provider: str
    model: str
    # The environment variable that holds the key (named in auth errors).
    key_env: str
    # How to choose another model (named when the model is unknown or retired).
    model_hint: str


def _error_fields(body: Any) -> tuple[str | None, str | None, str | None]:
    """(type, message, code) from an error body of either API ({"error": {...}} or the inner
    dict: the openai SDK keeps only the inner one)."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            etype, message, code = inner.get("type"), inner.get("message"), inner.get("code")
            return (
                str(etype or code) if (etype or code) else None,
                str(message) if message else None,
                str(code) if code else None,
            )
    if isinstance(body, str) and body:
        return None, body, None
    return None, None, None


_RETIRED_WORDS = (
    "deprecated",
    "retired",
    "no longer",
    "does not exist",
    "not found",
    "unknown model",
)


def classify(
    status: int | None,
    body: Any,
    headers: Mapping[str, str] | None,
    ctx: ErrorContext,
) -> Exception:
    """What one failed response stands for: Transient, ModelUnavailable or ProviderError."""
    etype, message, code = _error_fields(body)
    detail = f"HTTP {status}" if status and status != 200 else "error event"
    if etype:
        detail += f" {etype}"
    text = f"{detail}: {message}" if message else detail
    lowered = (message or "").lower()
    if status in (401, 403) or etype in ("authentication_error", "permission_error"):
        return ProviderError(
            f"{ctx.provider} refused the credentials ({text}). Check {ctx.key_env}.",
            kind="auth",
            status=status,
        )
    model_named = "model" in lowered or etype == "not_found_error"
    if (
        (status == 404 and model_named)
        or "model_not_found" in (etype, code)
        or (status == 400 and "model" in lowered and any(w in lowered for w in _RETIRED_WORDS))
    ):
        return ModelUnavailable(
            f"{ctx.provider} does not serve model {ctx.model!r} ({text}). {ctx.model_hint}",
            status=status,
        )
    if status in RETRYABLE_STATUS or (
        (status is None or status == 200) and (etype is None or etype in TRANSIENT_ERROR_TYPES)
    ):
        return Transient(text, status=status, retry_after=parse_retry_after(headers))
    if status is not None and status >= 500:
        return Transient(text, status=status, retry_after=parse_retry_after(headers))
    if (
        "prompt is too long" in lowered
        or "context length" in lowered
        or "context window" in lowered
    ):
        return ProviderError(
            f"{ctx.provider}: the prompt is too long ({text})", kind="context", status=status
        )
    return ProviderError(f"{ctx.provider} rejected the request ({text})", status=status)


def translate_sdk_error(err: BaseException, sdk: ModuleType, ctx: ErrorContext) -> Exception | None:
    """Our exception for an exception out of the `anthropic` or `openai` SDK (or its transport).

    Both SDKs share the same error classes (APIStatusError, APIConnectionError, APIError);
    `sdk` is the module the provider imported. Returns None for anything else (a bug: let it
    propagate)."""
    import httpx2  # both SDKs' transport; imported lazily like the SDKs themselves

    if isinstance(err, sdk.APIStatusError):
        return classify(err.status_code, err.body, err.response.headers, ctx)
    if isinstance(err, sdk.APITimeoutError):
        return Transient("the request timed out")
    if isinstance(err, sdk.APIConnectionError):
        cause = err.__cause__ or err
        return Transient(f"connection failed ({type(cause).__name__}: {cause})")
    if isinstance(err, sdk.APIError):
        # An error event in the middle of a stream (no HTTP status of its own).
        return classify(None, err.body if err.body is not None else err.message, None, ctx)
    if isinstance(err, httpx2.TimeoutException):
        return Transient("the stream stalled past the read timeout")
    if isinstance(err, httpx2.TransportError):
        return Transient(f"the connection dropped mid-stream ({err})")
    return None


Attempt = Callable[[], AsyncIterator[StreamItem]]


async def stream_with_retries(
    attempt: Attempt, policy: RetryPolicy, ctx: ErrorContext
) -> AsyncIterator[StreamItem]:
    """Run `attempt` until one finishes, announcing each retry with a `Retry` item.

    `attempt` streams one model call and raises `Transient` when it should be tried again; it
    yields its ModelResponse only once the call is complete, so a response is never produced
    for a broken stream and no tool call is ever executed twice. `Retry.attempt` counts the
    retries (1 = the first retry); after `policy.max_retries` of them, ProviderError."""
    retries = 0
    while True:
        try:
            async with contextlib.aclosing(attempt()) as items:
                async for item in items:
                    yield item
            return
        except Transient as failure:
            if retries >= policy.max_retries:
                raise ProviderError(
                    f"Model call to {ctx.model} ({ctx.provider}) failed after {retries + 1} "
                    f"attempt{'s' if retries else ''}: {failure.reason}",
                    kind=failure.kind,
                    status=failure.status,
                ) from failure
            retries += 1
            delay = policy.delay(retries, failure.retry_after)
            reason = failure.reason
        yield Retry(attempt=retries, delay_s=round(delay, 3), reason=reason)
        await asyncio.sleep(delay)


@contextlib.contextmanager
def sdk_errors(sdk: ModuleType, ctx: ErrorContext):
    """Around one attempt: the SDK's exceptions (and a stream's malformed JSON) become ours."""
    import json

    import httpx2

    try:
        yield
    except (sdk.APIError, httpx2.HTTPError) as err:
        translated = translate_sdk_error(err, sdk, ctx)
        if translated is None:
            raise
        raise translated from err
    except json.JSONDecodeError as err:
        raise Transient(f"the stream sent malformed JSON ({err.msg})") from err
