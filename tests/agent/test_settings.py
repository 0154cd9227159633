"""Typed settings all the way: each part is validated when the settings are read."""

from __future__ import annotations

import json

import pytest

from agent.context.settings import ContextSettings
from agent.errors import ConfigError
from agent.providers import make_provider
from agent.providers.retry import RetryPolicy
from agent.settings import load_settings


def test_context_settings_are_a_model_validated_when_read(tmp_path):
    settings = load_settings(tmp_path, tmp_path, {"context": {"keep_tool_uses": 5}})
    assert isinstance(settings.context, ContextSettings)
    assert settings.context.keep_tool_uses == 5
    (tmp_path / "settings.json").write_text(json.dumps({"context": {"keep_tool_uses": -1}}))
    with pytest.raises(ConfigError, match=r"context\.keep_tool_uses"):
        load_settings(tmp_path, tmp_path)


def test_context_layers_merge_key_by_key(tmp_path):
    (tmp_path / "settings.json").write_text(json.dumps({"context": {"keep_tool_uses": 7}}))
    settings = load_settings(tmp_path, tmp_path, {"context": {"auto_compact": False}})
    assert settings.context.keep_tool_uses == 7 and settings.context.auto_compact is False


def test_provider_options_are_checked_by_the_providers_model(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    with pytest.raises(ConfigError, match="thinking_mode do not apply"):
        make_provider("openai:gpt-x", thinking_mode="adaptive")
    with pytest.raises(ConfigError, match="timeout_s"):
        make_provider("openai:gpt-x", timeout_s="soon")
    provider = make_provider("openai:gpt-x", retry={"max_retries": 7}, context_window=32_000)
    assert isinstance(provider.retry, RetryPolicy) and provider.retry.max_retries == 7
