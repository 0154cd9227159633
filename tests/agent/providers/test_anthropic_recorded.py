"""Every recorded Messages API stream in /work/shared/fixtures replayed through the fake server."""

from __future__ import annotations

import pytest

from agent.events import TextDelta
from agent.messages import TextBlock, ToolUseBlock
from tests.agent.providers.helpers import collect, final, request, retries
from tests.fakes.replies import recorded
from tests.shared import FIXTURES

STREAMS = FIXTURES / "anthropic-streams"

pytestmark = pytest.mark.skipif(not STREAMS.is_dir(), reason="recorded streams not present")


async def replay(provider, llm_server, name: str):
    llm_server.push(recorded(STREAMS / name))
    items = await collect(provider, request())
    assert not retries(items), "a complete recorded stream must not be retried"
    return items, final(items)


async def test_basic_text(claude, llm_server):
    items, resp = await replay(claude, llm_server, "basic_response.txt")
    assert [i.text for i in items if isinstance(i, TextDelta)] == ["Hello", " there", "!"]
    assert resp.message.content == [TextBlock(text="Hello there!")]
    assert resp.stop_reason == "end_turn"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (11, 6)
    assert resp.model == "claude-3-opus-latest"


async def test_tool_use_input_split_mid_key(claude, llm_server):
    _, resp = await replay(claude, llm_server, "tool_use_response.txt")
    text, tool = resp.message.content
    assert text.text == "I'll check the current weather in Paris for you."
    assert tool == ToolUseBlock(
        id="toolu_01NRLabsLyVHZPKxbKvkfSMn", name="get_weather", input={"location": "Paris"}
    )
    assert resp.stop_reason == "tool_use"
    assert resp.usage.output_tokens == 65


async def test_invalid_tool_json_becomes_input_error(claude, llm_server):
    _, resp = await replay(claude, llm_server, "tool_use_invalid_json_response.txt")
    tool = resp.message.tool_uses()[0]
    assert tool.input == {}
    assert tool.input_error is not None
    # The raw text is quoted so the model can see what it sent.
    assert '"unit": celsius}' in tool.input_error
    assert resp.stop_reason == "tool_use"


async def test_incomplete_partial_json_at_max_tokens(claude, llm_server):
    _, resp = await replay(claude, llm_server, "incomplete_partial_json_response.txt")
    assert resp.stop_reason == "max_tokens"
    tool = resp.message.tool_uses()[0]
    assert tool.name == "make_file" and tool.input == {}
    assert "Filing taxes" in tool.input_error
    assert resp.message.text().startswith("I'll create a comprehensive tax guide")
    assert resp.usage.input_tokens == 450


async def test_context_management_applied_edits(sonnet45, llm_server):
    _, resp = await replay(sonnet45, llm_server, "context_management_response.txt")
    assert resp.applied_edits == [
        {"type": "clear_tool_uses_20250919", "cleared_input_tokens": 1500, "cleared_tool_uses": 2}
    ]
    assert resp.message.text() == "Hello there!"


async def test_compaction_block_is_left_out(claude, llm_server):
    _, resp = await replay(claude, llm_server, "compaction_response.txt")
    # The server-side compaction block has no place in our conversation; the text stays.
    assert resp.message.content == [TextBlock(text="Hello there!")]
    assert resp.stop_reason == "end_turn"
    assert resp.usage.input_tokens == 30


async def test_refusal(claude, llm_server):
    _, resp = await replay(claude, llm_server, "refusal_response.txt")
    assert resp.stop_reason == "refusal"
    assert resp.message.content == []
    assert resp.usage.output_tokens == 0


async def test_fallback_names_the_serving_model(claude, llm_server):
    _, resp = await replay(claude, llm_server, "fallback_response.txt")
    assert resp.model == "claude-sonnet-4-5"
    assert resp.message.content == [TextBlock(text="Hello there!")]


@pytest.mark.parametrize(
    "name", sorted(p.name for p in STREAMS.glob("*.txt")) if STREAMS.is_dir() else []
)
async def test_cut_recording_is_retried_not_returned(claude, llm_server, name):
    """Any recording cut before message_stop is an incomplete turn: retried, then whole."""
    body = (STREAMS / name).read_text()
    cut = body[: body.index("event: message_stop")]
    llm_server.push(recorded(cut), recorded(STREAMS / name))
    items = await collect(claude, request())
    assert len(retries(items)) == 1
    assert "message_stop" in retries(items)[0].reason
    resp = final(items)
    assert resp.stop_reason is not None
    assert len(llm_server.model_requests) == 2
