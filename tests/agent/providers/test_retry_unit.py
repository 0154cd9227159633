"""Retry policy arithmetic and retry-after parsing (no network)."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from agent.errors import ModelUnavailable, ProviderError
from agent.providers.retry import ErrorContext, RetryPolicy, Transient, classify, parse_retry_after

CTX = ErrorContext(
    provider="Anthropic", model="claude-x", key_env="ANTHROPIC_API_KEY", model_hint="Use --model."
)


def test_backoff_doubles_and_is_capped():
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=10.0, jitter=0.0)
    assert [policy.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_jitter_stays_in_band_and_varies():
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=60, jitter=0.25)
    delays = [policy.delay(3) for _ in range(200)]
    assert all(3.0 <= d <= 5.0 for d in delays)
    assert len(set(delays)) > 100


def test_retry_after_wins_and_is_capped():
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=60.0)
    assert policy.delay(1, retry_after=7.5) == 7.5
    assert policy.delay(1, retry_after=600) == 60.0
    assert policy.delay(1, retry_after=-3) == 0.0


@pytest.mark.parametrize(
    "headers,expected",
    [
        ({"retry-after": "12"}, 12.0),
        ({"Retry-After": "0.5"}, 0.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": "whenever"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_parse_retry_after(headers, expected):
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_http_date():
    now = time.time()
    header = formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"retry-after": header}, now=now) == pytest.approx(30, abs=1)
    past = formatdate(now - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}, now=now) == 0.0


def _body(etype: str, message: str) -> dict:
    return {"type": "error", "error": {"type": etype, "message": message}}


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529, 599])
def test_retryable_statuses_are_transient(status):
    assert isinstance(
        classify(status, _body("api_error", "x"), {"retry-after": "2"}, CTX), Transient
    )
    assert classify(status, None, {"retry-after": "2"}, CTX).retry_after == 2.0


def test_mid_stream_error_types():
    assert isinstance(classify(None, _body("overloaded_error", "Overloaded"), None, CTX), Transient)
    final = classify(None, _body("invalid_request_error", "bad"), None, CTX)
    assert isinstance(final, ProviderError) and not isinstance(final, Transient)


def test_auth_names_the_variable():
    err = classify(401, _body("authentication_error", "invalid x-api-key"), None, CTX)
    assert isinstance(err, ProviderError) and err.kind == "auth" and "ANTHROPIC_API_KEY" in str(err)


def test_model_errors():
    assert isinstance(
        classify(404, _body("not_found_error", "model: claude-x"), None, CTX), ModelUnavailable
    )
    openai_style = {
        "message": "The model `gpt-9` does not exist",
        "type": "invalid_request_error",
        "code": "model_not_found",
    }
    assert isinstance(classify(404, openai_style, None, CTX), ModelUnavailable)
    assert isinstance(
        classify(400, _body("invalid_request_error", "model claude-2 is deprecated"), None, CTX),
        ModelUnavailable,
    )
    # A 400 that is not about the model stays a plain error with the server's words.
    plain = classify(400, _body("invalid_request_error", "max_tokens: too large"), None, CTX)
    assert type(plain) is ProviderError and "max_tokens: too large" in str(plain)


def test_html_404_is_not_blamed_on_the_model():
    err = classify(404, "<html>Not Found</html>", None, CTX)
    assert type(err) is ProviderError
