"""Prefix reuse: shared prefixes, rewinds and eviction, with the engine still equal to the reference."""

from __future__ import annotations

import pytest
import torch

import model
from model.engine import Engine, SamplingParams

from .helpers import prompt, reference_logits, rel_err

TOL = 1e-4
BS = 16


@pytest.fixture(scope="module")
def net(tiny_dir):
    return model.load(tiny_dir, dtype=torch.float32)


def run(engine: Engine, tokens: list[int], new: int = 4):
    """Generate `new` greedy tokens; returns (Sequence, generated tokens)."""
    seqs: list = []
    out = [
        t for _, t in engine.generate([tokens], SamplingParams(max_new_tokens=new), sequences=seqs)
    ]
    return seqs[0], out


def prefill_and_check(engine: Engine, net, tokens: list[int]):
    """Prefill `tokens` (reusing what is cached) and compare every prefilled position with the reference."""
    seq = engine.start(tokens, SamplingParams(max_new_tokens=1))
    got = engine.prefill(seq, all_logits=True)  # (prefilled, vocab)
    ref = reference_logits(net, tokens)[seq.reused :]
    assert got.shape[0] == seq.prefilled
    assert rel_err(got, ref) < TOL
    engine.release(seq)
    return seq


def test_a_second_request_prefills_only_the_suffix(net):
    engine = Engine(net, block_size=BS, prefill_chunk=40, max_cached_tokens=2048)
    first = prompt(130)
    seq, _ = run(engine, first)
    assert seq.reused == 0 and seq.prefilled == 130
    second = first[:100] + prompt(40, seed=1)
    seq2 = prefill_and_check(engine, net, second)
    assert seq2.reused == 96  # six full blocks of 16 shared; block 7 differs from position 100
    assert seq2.prefilled == 44


def test_an_agent_step_reuses_the_previous_turn_including_its_output(net):
    engine = Engine(net, block_size=BS, prefill_chunk=64, max_cached_tokens=2048)
    turn1 = prompt(70, seed=2)
    _, out = run(engine, turn1, new=20)
    turn2 = turn1 + out + prompt(30, seed=3)  # the conversation grows: answer, then a tool result
    seq = prefill_and_check(engine, net, turn2)
    # positions 0..88 hold turn1 and the 19 decoded tokens whose KV was computed: 5 full blocks.
    assert seq.reused == 80 and seq.prefilled == len(turn2) - 80


def test_a_rewound_conversation_reuses_the_shorter_shared_prefix(net):
    engine = Engine(net, block_size=BS, prefill_chunk=40, max_cached_tokens=2048)
    long = prompt(150, seed=4)
    run(engine, long)
    rewound = long[:50] + prompt(60, seed=5)  # back to token 50, then a different turn
    seq = prefill_and_check(engine, net, rewound)
    assert seq.reused == 48 and seq.prefilled == 62


def test_a_fully_cached_prompt_still_prefills_its_last_block(net):
    engine = Engine(net, block_size=BS, prefill_chunk=40, max_cached_tokens=2048)
    tokens = prompt(64, seed=6)
    run(engine, tokens)
    seq = prefill_and_check(engine, net, tokens)  # the last token's logits must be computed
    assert seq.reused == 48 and seq.prefilled == 16


def test_eviction_takes_least_recently_used_blocks_and_results_stay_equal(net):
    engine = Engine(net, block_size=BS, prefill_chunk=48, max_cached_tokens=10 * BS)  # 10 blocks
    a, b = prompt(100, seed=7), prompt(100, seed=8)
    run(engine, a, new=2)  # 7 blocks, 6 full and cached after release
    assert engine.cached_tokens(a) == 96
    run(engine, b, new=2)  # needs 7 blocks: 4 free, then evicts the 3 oldest of a's
    assert engine.pool.evictions == 3
    assert engine.cached_tokens(a) == 0  # a's chain is broken at its first block
    assert engine.cached_tokens(b) == 96
    seq = prefill_and_check(engine, net, a)
    assert seq.reused == 0
    seq = prefill_and_check(engine, net, b[:80] + prompt(10, seed=9))
    assert (
        seq.reused == 0
    )  # b's blocks were evicted in turn while a was prefilled: nothing to reuse


def test_eviction_keeps_a_recently_reused_prefix(net):
    engine = Engine(net, block_size=BS, prefill_chunk=48, max_cached_tokens=7 * BS)
    a, b, c = prompt(40, seed=10), prompt(40, seed=11), prompt(70, seed=12)
    run(engine, a, new=1)
    run(engine, b, new=1)
    run(engine, a + [1, 2, 3], new=1)  # a's blocks become the most recently used
    run(engine, c, new=1)  # 5 blocks: the 3 free ones, then the 2 least recently used: b's
    assert engine.cached_tokens(a) == 32 and engine.cached_tokens(b) < 32


def test_the_index_travels_with_reused_blocks(net):
    """With selection active, a prefix reused without its indexer keys would silently pick from an
    empty index: zeroing the reused blocks' keys must break equality, so the tests above would
    catch a cache that dropped them."""
    engine = Engine(net, block_size=BS, prefill_chunk=40, max_cached_tokens=2048)
    first = prompt(130, seed=13)
    run(engine, first)
    second = first[:100] + prompt(40, seed=14)
    seq = engine.start(second)
    rows = engine.cache.rows(torch.tensor(seq.blocks), seq.reused)
    assert bool((engine.cache.index[0].view(-1, engine.cache.index.shape[-1])[rows] != 0).any())
    for layer in range(engine.cache.index.shape[0]):
        engine.cache.index[layer].view(-1, engine.cache.index.shape[-1])[rows] = 0
    got = engine.prefill(seq, all_logits=True)
    assert rel_err(got, reference_logits(net, second)[seq.reused :]) > 1e-3


def test_prefix_cache_switched_off_reuses_nothing(net):
    engine = Engine(net, block_size=BS, max_cached_tokens=2048, prefix_cache=False)
    tokens = prompt(60, seed=15)
    run(engine, tokens)
    seq = prefill_and_check(engine, net, tokens)
    assert seq.reused == 0
