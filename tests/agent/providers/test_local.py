"""`local:PATH` end to end on a tiny random checkpoint written by `python -m model.tiny`."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

pytest.importorskip("torch")

from agent import Agent
from agent import events as ev
from agent.errors import ConfigError
from agent.messages import Message
from agent.providers import make_provider
from agent.providers.base import ModelRequest, ModelResponse
from tools import EditorTool


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    subprocess.run([sys.executable, "-m", "model.tiny", str(out)], check=True, capture_output=True)
    return out


def collect(provider, request):
    async def go():
        return [item async for item in provider.stream(request)]

    return asyncio.run(go())


def test_streams_text_and_reports_usage_and_stop_reason(checkpoint):
    provider = make_provider(f"local:{checkpoint}")
    assert provider.context_window > 0
    request = ModelRequest(
        system="Be brief.", messages=[Message.user("hello")], tools=[EditorTool()], max_tokens=12
    )
    prompt = provider._prompt(request)
    assert "<｜User｜>hello<｜Assistant｜>" in prompt and "str_replace_based_edit_tool" in prompt
    items = collect(provider, request)
    final = items[-1]
    assert isinstance(final, ModelResponse)
    streamed = "".join(i.text for i in items if isinstance(i, (ev.TextDelta, ev.ThinkingDelta)))
    shown = "".join(
        getattr(b, "text", "") or getattr(b, "thinking", "")
        for b in final.message.content
        if b.type in ("text", "thinking")
    )
    assert streamed == shown
    assert final.usage.input_tokens == len(provider.tokenizer.encode(prompt))
    assert 0 < final.usage.output_tokens <= 12
    assert final.stop_reason in ("max_tokens", "end_turn", "tool_use")
    assert asyncio.run(provider.count_tokens(request)) == final.usage.input_tokens


def test_a_folder_without_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no config.json"):
        make_provider(f"local:{tmp_path}")


def test_headless_session_with_the_local_model(checkpoint, tmp_path):
    agent = Agent(
        cwd=tmp_path, model=f"local:{checkpoint}", settings={"max_tokens": 3, "checkpoints": False}
    )
    result = agent.run("hi")
    assert result.usage["input_tokens"] > 0 and result.num_turns >= 1
    assert result.stop_reason in ("max_tokens", "end_turn")


def test_the_local_tokenizer_counts_the_context(checkpoint, tmp_path):
    agent = Agent(cwd=tmp_path, model=f"local:{checkpoint}", settings={"checkpoints": False})
    rt = agent.runtime()
    tokenizer = rt.provider.tokenizer
    assert rt.context.policy.counter.raw_text("hello world") == len(tokenizer.encode("hello world"))
    usage = agent.context_usage()
    assert usage["window"] == rt.provider.context_window and usage["tools"] > 0
