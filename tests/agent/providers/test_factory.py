"""make_provider: spec parsing, environment, errors, and that no SDK is imported early."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from agent.errors import ConfigError, ProviderError, UsageError
from agent.providers import make_provider, parse_spec
from agent.providers.anthropic import AnthropicProvider
from agent.providers.openai_compat import OpenAICompatProvider
from agent.providers.retry import RetryPolicy
from tests.agent.providers.helpers import collect, final, request
from tests.fakes.replies import http_error, say

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "spec,parsed",
    [
        ("anthropic:claude-sonnet-5-5", ("anthropic", "claude-sonnet-5-5")),
        # The default and the aliases stay aliases here; the provider resolves them from the
        # SDK's model list (tests/agent/test_claude_code_conventions.py).
        ("anthropic", ("anthropic", "sonnet")),
        ("opus", ("anthropic", "opus")),
        ("anthropic:haiku", ("anthropic", "haiku")),
        ("claude-opus-4-7", ("anthropic", "claude-opus-4-7")),
        ("openai:deepseek-chat", ("openai", "deepseek-chat")),
        ("openai:Qwen/Qwen3-8B:fp8", ("openai", "Qwen/Qwen3-8B:fp8")),
        ("local:/models/dsv32", ("local", "/models/dsv32")),
        ("scripted:turns.json", ("scripted", "turns.json")),
    ],
)
def test_parse_spec(spec, parsed):
    assert parse_spec(spec) == parsed


@pytest.mark.parametrize("spec", ["", "gpt-4o", "bedrock:claude", "openai:", "local:", "openai"])
def test_bad_spec_is_a_config_error(spec):
    with pytest.raises(ConfigError) as caught:
        make_provider(spec)
    assert "anthropic:" in str(caught.value) or "names no" in str(caught.value)


def test_anthropic_with_explicit_url_and_key(llm_server):
    provider = make_provider(
        "anthropic:claude-sonnet-5-5", base_url=llm_server.url, api_key="explicit"
    )
    assert isinstance(provider, AnthropicProvider)
    assert provider.model == "claude-sonnet-5-5" and provider.context_window == 200_000


async def test_anthropic_from_environment(llm_server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", llm_server.url)
    provider = make_provider("claude-sonnet-5-5", max_retries=0)
    llm_server.push(say("from env"))
    assert final(await collect(provider, request())).message.text() == "from env"
    headers = llm_server.requests[-1].headers
    assert "env-key" in headers.get("x-api-key", "") + headers.get("authorization", "")


async def test_max_retries_option(llm_server):
    provider = make_provider(
        "anthropic:claude-sonnet-5-5", base_url=llm_server.url, api_key="k", max_retries=0
    )
    assert provider.retry.max_retries == 0
    llm_server.push(http_error(529))
    with pytest.raises(ProviderError, match="after 1 attempt:"):
        await collect(provider, request())


def test_retry_policy_option(llm_server):
    policy = RetryPolicy(max_retries=7)
    assert make_provider("openai:m", base_url=llm_server.openai_url, retry=policy).retry is policy


def test_no_anthropic_key_is_an_auth_error():
    with pytest.raises(ProviderError) as caught:
        make_provider("anthropic:claude-sonnet-5-5")
    assert caught.value.kind == "auth" and "ANTHROPIC_API_KEY" in str(caught.value)


def test_no_openai_key_without_base_url_is_an_auth_error():
    with pytest.raises(ProviderError) as caught:
        make_provider("openai:gpt-5")
    assert caught.value.kind == "auth" and "OPENAI_API_KEY" in str(caught.value)


def test_openai_with_base_url(llm_server):
    provider = make_provider(
        "openai:deepseek-chat", base_url=llm_server.openai_url, send_reasoning=True
    )
    assert isinstance(provider, OpenAICompatProvider) and provider.send_reasoning


def test_option_for_the_wrong_provider(llm_server):
    with pytest.raises(ConfigError, match="send_reasoning"):
        make_provider(
            "anthropic:claude-sonnet-5-5", base_url=llm_server.url, api_key="k", send_reasoning=True
        )


def test_scripted(tmp_path):
    script = tmp_path / "turns.json"
    script.write_text(json.dumps([{"text": "hello"}]))
    provider = make_provider(f"scripted:{script}")
    assert provider.name == "scripted"


def test_local_is_routed_and_a_bad_folder_is_a_usage_error(tmp_path):
    """Without the local module: UsageError saying so; with it: its own error for a bad folder."""
    try:
        import agent.providers.local  # noqa: F401
    except ImportError:
        with pytest.raises(UsageError, match="local provider is not available"):
            make_provider(f"local:{tmp_path}")
    else:
        with pytest.raises(UsageError):
            make_provider(f"local:{tmp_path}")


def test_importing_the_factory_loads_no_sdk():
    code = (
        "import sys, agent.providers; from agent.providers import make_provider, parse_spec;"
        "parse_spec('anthropic:claude-sonnet-4-5');"
        "print(sorted(m for m in ('anthropic', 'openai', 'httpx2', 'torch') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_sonnet_45_via_factory_warns_once(llm_server):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_provider("anthropic:claude-sonnet-4-5", base_url=llm_server.url, api_key="k")
    assert len(caught) == 1 and "2026-11-30" in str(caught[0].message)
