"""The model table: windows, thinking modes, prices, retirement notices."""

from __future__ import annotations

import warnings

import pytest

from agent.providers.anthropic import AnthropicProvider
from agent.providers.base import TokenUsage
from agent.providers.catalogue import ModelDeprecationWarning, Prices, claude_info, openai_info

MILLION = TokenUsage(
    input_tokens=1_000_000,
    output_tokens=1_000_000,
    cache_read_input_tokens=1_000_000,
    cache_creation_input_tokens=1_000_000,
)


def test_sonnet_45_prices_and_window():
    info = claude_info("claude-sonnet-4-5")
    assert (
        info.prices.input,
        info.prices.output,
        info.prices.cache_write,
        info.prices.cache_read,
    ) == (3, 15, 3.75, pytest.approx(0.3))
    assert (
        info.context_window == 200_000
        and info.thinking == "enabled"
        and info.retires == "2026-11-30"
    )


def test_snapshot_ids_map_to_their_family():
    assert (
        claude_info("claude-sonnet-4-5-20250929").prices == claude_info("claude-sonnet-4-5").prices
    )
    assert claude_info("claude-sonnet-4-5-20250929").id == "claude-sonnet-4-5-20250929"


@pytest.mark.parametrize(
    "model,mode",
    [
        ("claude-sonnet-4-5", "enabled"),
        ("claude-haiku-4-5-20251001", "enabled"),
        ("claude-opus-4-6", "adaptive"),
        ("claude-sonnet-5-5", "adaptive"),
        ("claude-opus-9-1", "adaptive"),  # unknown but newer: guessed from the version
        ("claude-3-7-sonnet-20250219", "enabled"),
        ("claude-something-new", "adaptive"),
    ],
)
def test_thinking_mode(model, mode):
    assert claude_info(model).thinking == mode


def test_unknown_models_cost_nothing_and_do_not_crash():
    assert claude_info("claude-zzz-1").prices.cost(MILLION) == 0.0
    assert openai_info("my-vllm-model").prices.cost(MILLION) == 0.0
    assert openai_info("my-vllm-model").context_window == 128_000
    assert openai_info("my-vllm-model", context_window=32_768).context_window == 32_768


def test_price_arithmetic():
    prices = Prices(input=3, output=15, cache_write=3.75, cache_read=0.3)
    assert prices.cost(TokenUsage(input_tokens=2_000, output_tokens=1_000)) == pytest.approx(
        0.006 + 0.015
    )
    assert prices.cost(MILLION) == pytest.approx(3 + 15 + 3.75 + 0.3)


def test_retiring_model_gives_one_notice(llm_server):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        provider = AnthropicProvider("claude-sonnet-4-5", api_key="k", base_url=llm_server.url)
    notices = [w for w in caught if issubclass(w.category, ModelDeprecationWarning)]
    assert len(notices) == 1
    text = str(notices[0].message)
    assert (
        "2026-11-30" in text and "--model anthropic:claude-sonnet-5-5" in text and "\n" not in text
    )
    assert provider.notice == text


def test_current_model_gives_no_notice(llm_server):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AnthropicProvider("claude-sonnet-5-5", api_key="k", base_url=llm_server.url)


async def test_sdk_warning_not_repeated_per_call(llm_server):
    from tests.agent.providers.helpers import collect, request
    from tests.fakes.replies import say

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        provider = AnthropicProvider("claude-sonnet-4-5", api_key="k", base_url=llm_server.url)
        llm_server.push(say("a"), say("b"))
        await collect(provider, request())
        await collect(provider, request())
    # Unclosed-socket ResourceWarnings from earlier tests' garbage can land here; only the
    # deprecation notices are this test's business.
    notices = [w.category for w in caught if not issubclass(w.category, ResourceWarning)]
    assert notices == [ModelDeprecationWarning]
