"""Provider fixtures: the real SDKs pointed at the fake LLM server on 127.0.0.1."""

from __future__ import annotations

import warnings

import pytest

from agent.providers.anthropic import AnthropicProvider
from agent.providers.openai_compat import OpenAICompatProvider
from tests.agent.providers.helpers import FAST


@pytest.fixture
def claude(llm_server):
    """An AnthropicProvider for claude-sonnet-5-5 (not retiring: no notice) on the fake."""
    return AnthropicProvider(
        "claude-sonnet-5-5", api_key="test-key", base_url=llm_server.url, retry=FAST
    )


@pytest.fixture
def sonnet45(llm_server):
    """The design's default model (it carries a retirement notice, silenced here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AnthropicProvider(
            "claude-sonnet-4-5", api_key="test-key", base_url=llm_server.url, retry=FAST
        )


@pytest.fixture
def gpt(llm_server):
    """An OpenAICompatProvider for deepseek-chat on the fake."""
    return OpenAICompatProvider(
        "deepseek-chat", api_key="test-key", base_url=llm_server.openai_url, retry=FAST
    )
