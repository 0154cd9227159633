"""Shared test set-up: every test gets its own GODWIT_HOME and no real API credentials."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.fakes.fixtures"]

_CREDENTIALS = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
)


@pytest.fixture(autouse=True)
def godwit_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("godwit_home")
    monkeypatch.setenv("GODWIT_HOME", str(home))
    for name in _CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    return home
