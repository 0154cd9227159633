"""DeepSeek-V3.2 chat encoding (golden file) and the completion parser (whole and streamed)."""

from __future__ import annotations

import copy
import json

import pytest

from model.encoding import encode_messages, parse_completion, render_tool_calls
from model.errors import EncodingError
from model.parsing import EOS, ParseError, StreamParser, TextDelta, ToolCall, collect
from tests.shared import FIXTURES

FIXTURE = FIXTURES / "deepseek-v32-encoding"


@pytest.fixture(scope="module")
def golden() -> tuple[list[dict], str]:
    if not FIXTURE.is_dir():
        pytest.skip("encoding fixture not present")
    data = json.loads((FIXTURE / "test_input.json").read_text(encoding="utf-8"))
    messages = copy.deepcopy(data["messages"])
    messages[0]["tools"] = data["tools"]  # tools ride on the system message
    return messages, (FIXTURE / "test_output.txt").read_text(encoding="utf-8")


def test_golden_prompt_byte_for_byte(golden):
    messages, expected = golden
    assert (
        encode_messages(messages, thinking=True, drop_thinking=True, add_bos=True).strip()
        == expected.strip()
    )


def completion_of(messages: list[dict], index: int) -> str:
    """The text the model generated for assistant turn `index`: full render minus the prompt."""
    index %= len(messages)
    full = encode_messages(messages[: index + 1])
    prompt = encode_messages(messages[:index])
    assert full.startswith(prompt)
    return full[len(prompt) :]


def normalised(msg: dict) -> dict:
    """Compare what matters: text, reasoning and calls (name + parsed arguments), not ids."""
    return {
        "content": msg.get("content") or "",
        "reasoning": msg.get("reasoning_content") or "",
        "calls": [
            (c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in msg.get("tool_calls") or []
        ],
    }


@pytest.mark.parametrize("index", [4, -6])
def test_round_trip_of_golden_turns(golden, index):
    messages, _ = golden
    text = completion_of(messages, index)
    assert text.endswith(EOS)
    parsed = parse_completion(text)
    assert parsed["parse_errors"] == []
    assert normalised(parsed) == normalised(messages[index])
    assert all(
        c["id"].startswith("call_") and c["type"] == "function" for c in parsed["tool_calls"]
    )


@pytest.mark.parametrize("index", [4, -6])
def test_streaming_char_by_char_equals_whole(golden, index):
    messages, _ = golden
    text = completion_of(messages, index)
    parser = StreamParser()
    events = []
    for ch in text:
        events += parser.feed(ch)
    events += parser.finish()
    assert normalised(collect(events)) == normalised(parse_completion(text))


def test_text_is_released_early_and_only_marker_prefixes_are_held():
    parser = StreamParser(thinking=False)
    assert parser.feed("Hello wor") == [TextDelta("Hello wor")]
    assert parser.feed("ld <｜DS") == [TextDelta("ld")]  # " <｜DS" could open a call block
    assert parser.feed("L is a toy>") == [TextDelta(" <｜DSL is a toy>")]
    events = parser.feed('\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name="f">\n')
    assert events == []  # the blank line before a call block is held, then dropped
    events = parser.feed(
        '<｜DSML｜parameter name="n" string="false">3</｜DSML｜parameter>\n</｜DSML｜invoke>'
    )
    assert (
        len(events) == 1
        and isinstance(events[0], ToolCall)
        and json.loads(events[0].arguments) == {"n": 3}
    )
    assert parser.feed("\n</｜DSML｜function_calls>" + EOS + "ignored") == []
    assert parser.finish() == []


def test_thinking_and_non_thinking_modes():
    msgs = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "reasoning_content": "R", "content": "A"},
        {"role": "user", "content": "again"},
    ]
    assert (
        encode_messages(msgs)
        == "<｜begin▁of▁sentence｜>S<｜User｜>hi<｜Assistant｜></think>A<｜end▁of▁sentence｜>"
        "<｜User｜>again<｜Assistant｜><think>"
    )
    assert encode_messages(msgs, drop_thinking=False).count("<think>R</think>A") == 1
    chat = encode_messages(msgs, thinking=False, add_bos=False)
    assert chat.endswith("<｜User｜>again<｜Assistant｜></think>") and "R" not in chat
    assert parse_completion("Sure.<｜end▁of▁sentence｜>", thinking=False)["content"] == "Sure."
    both = parse_completion(
        "why</think>Let me check.\n\n"
        + render_tool_calls(
            [
                {
                    "function": {
                        "name": "ls",
                        "arguments": {"path": "a b", "depth": 2, "all": True, "x": [1]},
                    }
                }
            ]
        )
        + EOS
    )
    assert (both["reasoning_content"], both["content"]) == ("why", "Let me check.")
    assert json.loads(both["tool_calls"][0]["function"]["arguments"]) == {
        "path": "a b",
        "depth": 2,
        "all": True,
        "x": [1],
    }


@pytest.mark.parametrize(
    "text, error",
    [
        (
            '</think><｜DSML｜function_calls>\n<｜DSML｜invoke name="f">\n<｜DSML｜parameter name="a" string="true">x',
            "unterminated",
        ),
        (
            (
                '</think><｜DSML｜function_calls>\n<｜DSML｜invoke name="f">\n<｜DSML｜parameter name="a" string="false">{bad'
                "</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜function_calls>"
            ),
            "not valid JSON",
        ),
        ("</think>hi <｜DSML｜tool_use>x</｜DSML｜tool_use>", "unknown DSML marker"),
        (
            "</think><｜DSML｜function_calls>\n<｜DSML｜invoke>\n</｜DSML｜invoke>\n</｜DSML｜function_calls>",
            "malformed invoke",
        ),
        (
            (
                '</think><｜DSML｜function_calls>\n<｜DSML｜invoke name="f">\n<｜DSML｜parameter name="a" string="true">x'
                "</｜DSML｜invoke>\n</｜DSML｜function_calls>"
            ),
            "malformed parameter",
        ),
        ('</think><｜DSML｜function_calls>\n<｜DSML｜invoke name="f">' + EOS, "not closed"),
    ],
)
def test_malformed_outputs_become_errors(text, error):
    result = parse_completion(text)
    assert any(error in e for e in result["parse_errors"]), result
    assert result["tool_calls"] == []
    streamed = StreamParser()
    events = [e for ch in text for e in streamed.feed(ch)] + streamed.finish()
    assert any(isinstance(e, ParseError) and error in e.message for e in events)


def test_good_call_survives_a_bad_neighbour():
    calls = render_tool_calls([{"function": {"name": "ok", "arguments": '{"a": 1}'}}])
    bad = calls.replace(
        "</｜DSML｜function_calls>",
        '<｜DSML｜invoke name="worse">oops</｜DSML｜invoke>\n</｜DSML｜function_calls>',
    )
    result = parse_completion("r</think>" + bad + EOS)
    assert [c["function"]["name"] for c in result["tool_calls"]] == ["ok"]
    assert len(result["parse_errors"]) == 1


def test_bad_conversations_are_clear_errors():
    with pytest.raises(EncodingError, match="unknown role"):
        encode_messages([{"role": "robot", "content": "x"}])
    with pytest.raises(EncodingError, match="not JSON"):
        encode_messages(
            [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{"}}]}]
        )
    with pytest.raises(EncodingError, match="function tool"):
        encode_messages([{"role": "system", "content": "", "tools": [{"type": "function"}]}])


@pytest.mark.parametrize("seed", range(5))
def test_random_chunking_never_changes_the_result(golden, seed):
    import random

    messages, _ = golden
    rng = random.Random(seed)
    texts = [
        completion_of(messages, 4),
        completion_of(messages, -6),
        (
            'r</think>x <｜DSML｜nope> y\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name="f">\n'
            '<｜DSML｜parameter name="a" string="false">[1, 2]</｜DSML｜parameter>\n</｜DSML｜invoke>\n'
            '<｜DSML｜invoke name="g">\n<｜DSML｜parameter name="b" string="false">{oops</｜DSML｜parameter>\n'
            "</｜DSML｜invoke>\n</｜DSML｜function_calls>tail"
        ),
    ]
    for text in texts:
        whole = parse_completion(text)
        parser, events, pos = StreamParser(), [], 0
        while pos < len(text):
            step = rng.randint(1, 12)
            events += parser.feed(text[pos : pos + step])
            pos += step
        streamed = collect(events + parser.finish())
        assert normalised(streamed) == normalised(whole)
        assert streamed["parse_errors"] == whole["parse_errors"]
