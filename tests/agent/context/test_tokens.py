import math

import pytest

from agent.context.tokens import (
    BLOCK_OVERHEAD,
    MESSAGE_OVERHEAD,
    TokenCounter,
    count_request,
    heuristic_tokens,
)
from agent.messages import Message, TextBlock, ToolResultBlock, ToolUseBlock
from agent.providers.base import ModelRequest

from .convo import session


def test_heuristic_counts_utf8_bytes():
    assert heuristic_tokens("") == 0
    assert heuristic_tokens("a" * 35) == 10
    assert heuristic_tokens("a" * 36) == 11  # rounded up
    # CJK: 3 bytes a character, so 7 characters are 21 bytes -> 6 tokens, not 2.
    assert heuristic_tokens("日本語のテキス") == 6


def test_count_fn_replaces_heuristic():
    counter = TokenCounter(count_fn=lambda t: len(t.split()))
    assert counter.estimate_text("one two three") == 3
    msg = Message.user("one two three four")
    assert counter.estimate_message(msg) == 4 + BLOCK_OVERHEAD + MESSAGE_OVERHEAD


def test_messages_count_every_block_kind():
    counter = TokenCounter()
    use = ToolUseBlock(id="t1", name="bash", input={"command": "pytest -x " + "y" * 700})
    msgs = [
        Message.user("hello"),
        Message(role="assistant", content=[TextBlock(text="ok"), use]),
        Message(role="user", content=[ToolResultBlock(tool_use_id="t1", content="z" * 3500)]),
    ]
    total = counter.estimate_messages(msgs)
    assert total == sum(counter.estimate_message(m) for m in msgs)
    # The tool input and the result dominate: >= 200 + 1000 tokens.
    assert total >= 1200
    assert counter.estimate_message(msgs[1]) > 200


def test_calibrate_tracks_a_different_tokenizer():
    # The "real" tokenizer counts 30% more than the heuristic on this kind of text.
    def real(text: str) -> int:
        return math.ceil(heuristic_tokens(text) * 1.3)

    counter = TokenCounter()
    sample = session(10)
    est = counter.estimate_messages(sample)
    actual = sum(
        real(b.content if isinstance(b, ToolResultBlock) else getattr(b, "text", ""))
        for m in sample
        for b in m.content
    )
    ratio = counter.calibrate(actual, est)
    assert 1.15 < ratio < 1.35
    other = session(20)[30:]
    truth = sum(
        real(b.content if isinstance(b, ToolResultBlock) else getattr(b, "text", ""))
        for m in other
        for b in m.content
    )
    # Uncalibrated the estimate was ~23% low; now within 8%.
    assert abs(counter.estimate_messages(other) - truth) / truth < 0.08


def test_calibrate_ignores_noise_and_clamps():
    counter = TokenCounter()
    assert counter.calibrate(5000, 10) == 1.0  # tiny estimates are framing noise
    assert counter.calibrate(0, 5000) == 1.0
    assert counter.calibrate(10**9, 1000) == 4.0  # absurd figures clamp
    counter.ratio = 1.0
    assert counter.calibrate(1, 1000) == 0.25


def test_observe_anchors_the_next_request_on_the_real_count():
    counter = TokenCounter()
    msgs = session(5)
    counter.observe(12_345, "system", [], msgs)
    grown = msgs + session(6)[-2:]
    added = counter.scale(sum(counter.raw_message(m) for m in grown[len(msgs) :]))
    assert counter.estimate_request("system", [], grown) == 12_345 + added
    # A changed prefix (a clearing step, a compaction) falls back to the calibrated estimate.
    changed = grown[1:]
    assert counter.estimate_request("system", [], changed) == counter.scale(
        counter.raw_text("system") + sum(counter.raw_message(m) for m in changed)
    )
    # So does a different system prompt.
    assert counter.estimate_request("a longer system prompt", [], grown) != 12_345 + added


def test_observe_adds_server_cleared_tokens_back_for_calibration():
    counter = TokenCounter()
    msgs = session(10)
    est = counter.estimate_request("", [], msgs)
    counter.observe(est // 2, "", [], msgs, cleared_tokens=est - est // 2)
    assert counter.ratio == pytest.approx(1.0, abs=0.01)
    assert counter.estimate_request("", [], msgs) == est // 2


class _FakeTool:
    name = "grep"

    def openai_spec(self):
        return {
            "type": "function",
            "function": {
                "name": "grep",
                "description": "x" * 350,
                "parameters": {"type": "object"},
            },
        }


def test_tools_counted_from_specs_and_bad_tool_is_refused():
    counter = TokenCounter()
    assert counter.raw_tools([_FakeTool()]) > 100
    assert counter.raw_tools([{"name": "a"}]) == heuristic_tokens('{"name":"a"}') + BLOCK_OVERHEAD
    with pytest.raises(TypeError, match="cannot count tokens of tool"):
        counter.raw_tools([42])


def test_breakdown_parts_sum_to_total_and_match_the_request_estimate():
    counter = TokenCounter()
    counter.ratio = 1.17
    msgs = session(8)
    system = "You are Godwit." * 50
    b = counter.breakdown(system, [_FakeTool()], "memory notes " * 40, msgs, 200_000)
    parts = b.system_prompt + b.tools + b.memory + b.conversation + b.tool_results
    assert parts == b.total
    assert b.free == 200_000 - b.total
    assert b.fraction == pytest.approx(b.total / 200_000)
    # Tool results are most of this session; the ceil per part costs at most 5 tokens.
    assert b.tool_results > b.conversation
    whole = counter.estimate_request(system, [_FakeTool()], msgs) + counter.estimate_text(
        "memory notes " * 40
    )
    assert abs(whole - b.total) <= 5


def test_breakdown_free_never_negative_and_window_checked():
    counter = TokenCounter()
    b = counter.breakdown("", [], "", session(40), 1000)
    assert b.free == 0 and b.fraction > 1
    with pytest.raises(ValueError, match="window must be positive"):
        counter.breakdown("", [], "", [], 0)


class _Counting:
    def __init__(self, answer):
        self.answer = answer

    async def count_tokens(self, request):
        return self.answer


async def test_count_request_prefers_the_provider_count():
    req = ModelRequest(system="s", messages=session(2))
    counter = TokenCounter()
    assert await count_request(_Counting(777), req, counter) == (777, True)
    tokens, exact = await count_request(_Counting(None), req, counter)
    assert not exact and tokens == counter.estimate_request("s", [], req.messages)


def test_texts_are_counted_once_by_a_slow_tokenizer():
    calls = []

    def count(text):
        calls.append(len(text))
        return len(text) // 4

    counter = TokenCounter(count_fn=count)
    msgs = session(20)
    first = counter.estimate_messages(msgs)
    n = len(calls)
    # The same blocks again: nothing is counted again.
    for _ in range(3):
        assert counter.estimate_messages(msgs) == first
    assert len(calls) == n
    # Copies (what an edited view is made of): only the short texts are counted again.
    copies = [m.model_copy(deep=True) for m in msgs]
    assert counter.estimate_messages(copies) == first
    assert len(calls) > n and all(c < 256 for c in calls[n:])
    # A block whose content is replaced in place is counted afresh, not served stale.
    msgs[2].content[0].content += "x" * 4000
    assert counter.estimate_messages(msgs) == first + 1000


def test_the_memory_tools_calls_and_results_are_the_memory_share():
    counter = TokenCounter()
    notes = "the user prefers tabs; " * 60
    msgs = [
        Message(role="user", content=[TextBlock(text="what do you remember?")]),
        Message(
            role="assistant",
            content=[
                ToolUseBlock(
                    id="m1", name="memory", input={"command": "view", "path": "/memories"}
                ),
                ToolUseBlock(id="g1", name="grep", input={"pattern": "x"}),
            ],
        ),
        Message(
            role="user",
            content=[
                ToolResultBlock(tool_use_id="m1", content=notes),
                ToolResultBlock(tool_use_id="g1", content="a.py:1: x"),
            ],
        ),
    ]
    b = counter.breakdown("", [], "", msgs, 200_000)
    assert b.memory >= heuristic_tokens(notes)
    assert b.tool_results < b.memory  # the grep result alone
    assert b.system_prompt + b.tools + b.memory + b.conversation + b.tool_results == b.total
