"""The pieces together, as the demo and the local provider will use them: messages -> prompt ->
ids -> greedy tokens -> streamed text -> parsed message. Random weights emit random tokens,
special and DSML tokens included, so this also shows garbage output never crashes the parser."""

from __future__ import annotations

import torch

import model
from model.encoding import encode_messages
from model.generate import generate
from model.parsing import ParseError, StreamParser, collect
from model.tokenizer import Tokenizer


@torch.no_grad()
def test_messages_to_parsed_reply(tiny_dir):
    tok = Tokenizer(tiny_dir)
    m = model.load(tiny_dir, dtype=torch.float32)
    tools = [
        {
            "type": "function",
            "function": {"name": "ls", "description": "list", "parameters": {"type": "object"}},
        }
    ]
    prompt = encode_messages(
        [
            {"role": "system", "content": "Be brief.", "tools": tools},
            {"role": "user", "content": "What is here?"},
        ]
    )
    ids = torch.tensor([tok.encode(prompt)])
    out = generate(m, ids, max_new_tokens=24, eos_id=tok.eos_id)[0, ids.shape[1] :].tolist()
    stream, parser, events = tok.stream(), StreamParser(thinking=True), []
    for token in out:
        events += parser.feed(stream.push(token))
    events += parser.feed(stream.flush()) + parser.finish()
    reply = collect(events)
    text = tok.decode(out)
    assert set(reply) == {"role", "content", "reasoning_content", "tool_calls", "parse_errors"}
    assert len(out) == 24 or out[-1] == tok.eos_id
    # Without markup, nothing is lost: reasoning + </think> + content is the text up to EOS.
    cut = text.split("<｜end▁of▁sentence｜>")[0]
    if not reply["tool_calls"] and not reply["parse_errors"]:
        closed = "</think>" if "</think>" in cut else ""
        assert (reply["reasoning_content"] or "") + closed + reply["content"] == cut.removeprefix(
            "<think>"
        )


def test_random_token_streams_never_crash_the_parser(tiny_dir):
    tok = Tokenizer(tiny_dir)
    g = torch.Generator().manual_seed(0)
    markers = [
        tok.token_to_id(t) for t in ("<think>", "</think>", "｜DSML｜", "<｜end▁of▁sentence｜>")
    ]
    pieces = tok.encode(
        '<｜DSML｜function_calls><｜DSML｜invoke name="f"><｜DSML｜parameter name="a" string="false">'
    )
    for _ in range(50):
        # Bias towards markup so the parser sees half-open blocks and stray markers often.
        pool = torch.tensor(markers * 20 + pieces * 5 + list(range(tok.vocab_size)))
        ids = pool[torch.randint(0, len(pool), (60,), generator=g)].tolist()
        stream, parser, events = tok.stream(), StreamParser(thinking=bool(ids[0] % 2)), []
        for token in ids:
            events += parser.feed(stream.push(token))
        events += parser.feed(stream.flush()) + parser.finish()
        reply = collect(events)
        assert all(isinstance(e, str) for e in reply["parse_errors"])
        assert all(not isinstance(e, ParseError) or e.message for e in events)
