"""Pytest fixtures for the fake LLM server; register with
`pytest_plugins = ["tests.fakes.fixtures"]` in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.llm_server import FakeLLMServer


@pytest.fixture
def llm_server() -> Iterator[FakeLLMServer]:
    """A fresh fake Anthropic + OpenAI server on 127.0.0.1, stopped after the test.

    `.url` is the Anthropic base URL, `.openai_url` the OpenAI one; `.push(...)` queues replies
    (see tests.fakes.replies) and `.requests` lists what was received."""
    server = FakeLLMServer().start()
    try:
        yield server
    finally:
        server.stop()
