"""Persisted KV: save a conversation's blocks, reload them into a fresh engine, ignore bad files."""

from __future__ import annotations

import logging

import pytest
import torch

import model
from model.engine import Engine, SamplingParams
from model.engine.blocks import block_hashes
from model.engine.persist import KVStore, checkpoint_fingerprint

from .helpers import prompt, reference_logits, rel_err

TOL = 1e-4
BS = 16


@pytest.fixture(scope="module")
def net8(tiny_dir):
    """FP8 indexer, so the saved index carries keys and scales."""
    return model.load(tiny_dir, dtype=torch.float32, indexer="fp8")


def engine_for(net, ckpt: str = "ckpt-a", **kw) -> Engine:
    return Engine(
        net, block_size=BS, prefill_chunk=48, max_cached_tokens=1024, checkpoint_id=ckpt, **kw
    )


def converse(engine: Engine, tokens: list[int]) -> list[int]:
    out = [t for _, t in engine.generate([tokens], SamplingParams(max_new_tokens=3))]
    return tokens + out


def test_reload_restores_latents_and_index_and_only_the_suffix_is_prefilled(net8, tmp_path):
    first = engine_for(net8)
    convo = converse(first, prompt(120))
    path = KVStore(first, root=tmp_path).save(convo)
    assert path is not None and path.parent.parent == tmp_path

    second = engine_for(net8)  # a new process: empty cache
    nxt = convo + prompt(20, seed=1)
    assert KVStore(second, root=tmp_path).load(nxt) == 112  # 7 full blocks of the 122 computed
    seq = second.start(nxt, SamplingParams(max_new_tokens=1))
    assert seq.reused == 112
    rows_a = first.cache.rows(torch.tensor(first.pool.lookup(block_hashes(convo, BS))), 112)
    rows_b = second.cache.rows(torch.tensor(seq.blocks), 112)
    for name, t in first.cache.tensors().items():
        a = t.view(t.shape[0], -1, *t.shape[3:])[:, rows_a]
        b = second.cache.tensors()[name].view(t.shape[0], -1, *t.shape[3:])[:, rows_b]
        assert torch.equal(
            a.view(torch.uint8) if a.dtype == torch.float8_e4m3fn else a,
            b.view(torch.uint8) if b.dtype == torch.float8_e4m3fn else b,
        ), name
    assert bool((second.cache.index_scale[:, seq.blocks] > 0).all())  # scales came back, not zeros
    got = second.prefill(seq, all_logits=True)
    assert got.shape[0] == len(nxt) - 112
    assert rel_err(got, reference_logits(net8, nxt)[112:]) < TOL


def test_missing_corrupt_foreign_and_stale_files_are_ignored_with_one_log_line(
    net8, tmp_path, caplog
):
    tokens = prompt(80, seed=2)
    store = KVStore(engine_for(net8), root=tmp_path)
    assert store.load(tokens) == 0  # nothing saved yet

    other = engine_for(net8, ckpt="ckpt-b")
    foreign = KVStore(other, root=tmp_path).save(converse(other, tokens))
    stale_engine = engine_for(net8)
    stale_store = KVStore(stale_engine, root=tmp_path)
    stale_store.version = "0"
    store.dir.mkdir(parents=True, exist_ok=True)
    stale = stale_store.save(converse(stale_engine, tokens))
    assert stale is not None and stale.parent == store.dir
    (store.dir / "foreign.safetensors").write_bytes(
        foreign.read_bytes()
    )  # copied from another checkpoint
    (store.dir / "garbage.safetensors").write_bytes(b"\x00\x01 not a safetensors file")
    good = engine_for(net8)
    good_path = KVStore(good, root=tmp_path).save(converse(good, prompt(80, seed=20)))
    (store.dir / "truncated.safetensors").write_bytes(good_path.read_bytes()[:200])
    good_path.unlink()

    fresh = engine_for(net8)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="model.engine.persist"):
        assert KVStore(fresh, root=tmp_path).load(tokens + [5]) == 0
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4, lines  # one line per bad file
    assert any("checkpoint" in m and "ckpt-b" in m for m in lines)
    assert any("engine" in m and "'0'" in m for m in lines)
    assert sum("unreadable" in m for m in lines) == 2
    seq = fresh.start(tokens + [5], SamplingParams(max_new_tokens=1))
    assert seq.reused == 0
    assert rel_err(fresh.prefill(seq, all_logits=True), reference_logits(net8, tokens + [5])) < TOL


def test_the_size_cap_removes_the_oldest_files(net8, tmp_path):
    engine = engine_for(net8)
    store = KVStore(engine, root=tmp_path)
    first = store.save(converse(engine, prompt(40, seed=3)))
    size = first.stat().st_size
    store.cap_bytes = int(size * 1.5)
    second = store.save(converse(engine, prompt(40, seed=4)))
    assert second.is_file() and not first.exists()


def test_checkpoint_fingerprint_changes_with_the_checkpoint(tiny_dir, tmp_path):
    from tests.model.conftest import with_config

    other = with_config(tiny_dir, tmp_path / "other", index_topk=16)
    assert checkpoint_fingerprint(tiny_dir) == checkpoint_fingerprint(tiny_dir)
    assert checkpoint_fingerprint(tiny_dir) != checkpoint_fingerprint(other)


def test_persistence_needs_a_checkpoint_id(net8):
    with pytest.raises(ValueError, match="checkpoint_id"):
        KVStore(Engine(net8, block_size=BS, max_cached_tokens=256))
