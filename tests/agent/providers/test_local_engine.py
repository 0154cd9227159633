"""`local:PATH` on the engine: agent steps prefill only what is new, usage reports the rest as
cache reads, and a continued session reloads the persisted KV instead of re-prefilling."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from agent import Agent
from agent.messages import Message, TextBlock
from agent.providers import make_provider
from agent.providers.base import ModelRequest, ModelResponse
from tools import EditorTool

BLOCK = 64  # the engine's block size: reuse comes in whole blocks


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    subprocess.run([sys.executable, "-m", "model.tiny", str(out)], check=True, capture_output=True)
    return out


def respond(provider, request) -> ModelResponse:
    async def go():
        return [item async for item in provider.stream(request)]

    final = asyncio.run(go())[-1]
    assert isinstance(final, ModelResponse)
    return final


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def test_each_agent_step_prefills_only_the_new_tokens(checkpoint):
    provider = make_provider(f"local:{checkpoint}")
    messages = [Message.user("hello")]
    previous: list[int] | None = None
    for step in range(3):
        request = ModelRequest(
            system="Be brief.", messages=list(messages), tools=[EditorTool()], max_tokens=5
        )
        ids = provider.tokenizer.encode(provider._prompt(request))
        usage = respond(provider, request).usage
        assert usage.input_tokens + usage.cache_read_input_tokens == len(ids)
        if previous is None:
            assert usage.cache_read_input_tokens == 0
        else:
            # The earlier request's blocks up to where the conversations part (the re-rendered
            # assistant turn) are reused, and only the rest is prefilled.
            shared = min(common_prefix(previous, ids), len(ids) - 1) // BLOCK * BLOCK
            assert shared > 0
            assert usage.cache_read_input_tokens == shared
            assert usage.input_tokens == len(ids) - shared
        previous = ids
        messages += [
            Message(role="assistant", content=[TextBlock(text=f"answer {step}")]),
            Message.user(f"and step {step + 1}?"),
        ]


def test_a_continued_session_reloads_the_saved_kv(checkpoint, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    settings = {"max_tokens": 4, "max_turns": 1, "checkpoints": False}
    with Agent(cwd=repo, model=f"local:{checkpoint}", settings=settings) as agent:
        first = agent.run("hello")
    assert first.usage["cache_read_input_tokens"] == 0
    saved = list((Path(os.environ["GODWIT_HOME"]) / "kv").glob("*/*.safetensors"))
    assert len(saved) == 1  # written when the turn handed control back
    # A new Agent builds a new provider and engine (as a new `godwit --continue` process would).
    with Agent(
        cwd=repo, model=f"local:{checkpoint}", settings=settings, continue_latest=True
    ) as agent:
        second = agent.run("again")
    assert second.usage["cache_read_input_tokens"] >= BLOCK
    assert second.usage["input_tokens"] < first.usage["input_tokens"]


def test_a_corrupt_kv_file_is_ignored_and_the_prompt_prefilled(checkpoint, tmp_path, caplog):
    kv = Path(os.environ["GODWIT_HOME"]) / "kv"
    provider = make_provider(f"local:{checkpoint}")
    provider.kv.dir.mkdir(parents=True, exist_ok=True)
    (provider.kv.dir / "broken.safetensors").write_bytes(b"\x07garbage")
    request = ModelRequest(system="Be brief. " * 40, messages=[Message.user("hi")], max_tokens=3)
    assert (
        len(provider.tokenizer.encode(provider._prompt(request))) > BLOCK
    )  # long enough to look for KV
    usage = respond(provider, request).usage
    assert usage.cache_read_input_tokens == 0 and usage.input_tokens > 0
    assert any("unreadable KV file" in r.getMessage() for r in caplog.records)
    assert kv.is_dir()


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny3")
    subprocess.run(
        [sys.executable, "-m", "model.tiny", str(out), "--shards", "3"],
        check=True,
        capture_output=True,
    )
    return out


def _godwit(repo: Path, *args: str) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root), "GODWIT_NO_SERVER": "1"}
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_model_loads_on_the_first_request_and_says_so_shard_by_shard(sharded, tmp_path):
    """The checkpoint is checked at start (headers only) and loaded on the first request, each
    shard a progress line in the event stream (and on stderr for the text output)."""
    import json

    repo = tmp_path / "repo"
    repo.mkdir()
    args = ["--model", f"local:{sharded}", "--max-turns", "1", "--settings"]
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps({"max_tokens": 3, "checkpoints": False}))
    out = _godwit(repo, "-p", "hi", *args, str(settings), "--output-format", "stream-json")
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    loads = [x for x in lines if x.get("subtype") == "progress" and x.get("task") == "load"]
    total = loads[0]["total"]  # the shards holding tensors the model uses (not the MTP layer's)
    assert total >= 2 and [(x["done"], x["total"]) for x in loads] == [
        (i, total) for i in range(1, total + 1)
    ]
    assert (
        loads[-1]["finished"]
        and loads[-1]["message"] == f"Loading the model: {total}/{total} shards"
    )
    kinds = [x.get("type") for x in lines]
    # after the init line, before the answer
    assert kinds.index("system") == 0 and lines.index(loads[-1]) < kinds.index("result")
    text = _godwit(repo, "-p", "hi", *args, str(settings))
    assert text.returncode == 0, text.stderr[-2000:]
    assert f"Loading the model: {total}/{total} shards" in text.stderr


def test_a_broken_checkpoint_is_refused_at_start_not_at_the_first_request(sharded, tmp_path):
    import json
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(sharded, broken)
    index = json.loads((broken / "model.safetensors.index.json").read_text())
    shard = index["weight_map"]["model.embed_tokens.weight"]
    (broken / shard).write_bytes(b"\x00" * 16)  # a truncated shard
    repo = tmp_path / "repo"
    repo.mkdir()
    out = _godwit(repo, "-p", "hi", "--model", f"local:{broken}")
    assert out.returncode != 0
    assert f"Cannot load local:{broken}" in out.stderr and "Traceback" not in out.stderr
