"""Tokenizer of the tiny checkpoint: byte-level round trip, special ids, streaming, chat templates."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model.encoding import encode_messages
from model.errors import TokenizerError
from model.tiny import ADDED_TOKENS, SPECIAL_TOKENS
from model.tokenizer import Tokenizer

TEXTS = [
    "plain ascii",
    "明天杭州和北京的天气怎么样？🌤️📅",
    "tabs\tand\nnewlines  \r\n",
    "\x00\x7f\u0301é",
    "def f(x):\n    return x ** 2  # ok",
]


@pytest.fixture(scope="module")
def tok(tiny_dir) -> Tokenizer:
    return Tokenizer(tiny_dir)


@pytest.mark.parametrize("text", TEXTS)
def test_any_text_round_trips(tok, text):
    assert tok.decode(tok.encode(text)) == text


def test_special_tokens_have_single_ids(tok, tiny_dir):
    cfg = json.loads((tiny_dir / "config.json").read_text())
    assert (tok.bos_id, tok.eos_id) == (cfg["bos_token_id"], cfg["eos_token_id"]) == (0, 1)
    for t in SPECIAL_TOKENS + ADDED_TOKENS:
        assert len(tok.encode(t)) == 1 and tok.token_to_id(t) is not None, t
    assert tok.vocab_size <= cfg["vocab_size"]
    prompt = encode_messages([{"role": "user", "content": "hi"}])
    ids = tok.encode(prompt)
    assert ids[0] == tok.bos_id and tok.decode(ids) == prompt
    assert tok.decode(ids, skip_special_tokens=True) == "hi<think>"


def test_streaming_decode_equals_full_decode(tok):
    text = "".join(TEXTS) * 8  # long enough to pass the decoder's restart point
    ids = tok.encode(text)
    stream = tok.stream()
    pieces = [stream.push(i) for i in ids] + [stream.flush()]
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)


TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] not in ['system', 'user', 'assistant'] %}{{ raise_exception('bad role ' + m['role']) }}{% endif %}"
    "<{{ m['role'] }}>{{ m['content'] }}{% if m.tools is defined %}{{ m.tools | tojson }}{% endif %}{{ eos_token }}"
    "{% endfor %}{% if tools %}[{{ tools | length }} tools]{% endif %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


@pytest.fixture()
def templated(tiny_dir, tmp_path) -> Path:
    folder = tmp_path / "tok"
    folder.mkdir()
    shutil.copy(tiny_dir / "tokenizer.json", folder / "tokenizer.json")
    cfg = json.loads((tiny_dir / "tokenizer_config.json").read_text())
    cfg["chat_template"] = TEMPLATE
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    return folder


def test_chat_template_renders_like_transformers(templated):
    transformers = pytest.importorskip("transformers")
    tools = [{"type": "function", "function": {"name": "f", "description": "é", "parameters": {}}}]
    messages = [
        {"role": "system", "content": "S", "tools": tools},
        {"role": "user", "content": "héllo"},
    ]
    ours = Tokenizer(templated).apply_chat_template(
        messages, add_generation_prompt=True, tools=tools
    )
    ref = transformers.PreTrainedTokenizerFast.from_pretrained(
        str(templated), local_files_only=True
    )
    theirs = ref.apply_chat_template(
        messages, tools=tools, add_generation_prompt=True, tokenize=False
    )
    assert ours == theirs and "[1 tools]" in ours and '"é"' in ours
    assert Tokenizer(templated).render_prompt(messages).endswith("<assistant>")


def test_template_errors_and_missing_files(templated, tiny_dir, tmp_path):
    with pytest.raises(TokenizerError, match="bad role robot"):
        Tokenizer(templated).apply_chat_template([{"role": "robot", "content": "x"}])
    with pytest.raises(TokenizerError, match="no chat_template"):
        Tokenizer(tiny_dir).apply_chat_template([])
    assert (
        Tokenizer(tiny_dir)
        .render_prompt([{"role": "user", "content": "q"}])
        .endswith("<｜Assistant｜><think>")
    )
    with pytest.raises(TokenizerError, match="cannot load"):
        Tokenizer(tmp_path)


def test_tiny_cli_writes_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "cli"
    root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "model.tiny",
            str(out),
            "--fp8",
            "--layers",
            "3",
            "--seed",
            "7",
            "--shards",
            "3",
        ],
        check=True,
        cwd=root,
        capture_output=True,
    )
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["num_hidden_layers"] == 3 and cfg["quantization_config"]["weight_block_size"] == [
        32,
        32,
    ]
    index = json.loads((out / "model.safetensors.index.json").read_text())["weight_map"]
    assert len(set(index.values())) == 3
    assert "model.layers.2.mlp.experts.0.down_proj.weight_scale_inv" in index
    assert "model.layers.3.enorm.weight" in index  # the MTP layer follows the decoder layers
    import model

    assert len(model.load(out).model.layers) == 3
