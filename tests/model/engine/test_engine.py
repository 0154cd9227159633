"""The engine against the reference path (absorbed MLA, exact indexer) on a tiny fp32 checkpoint."""

from __future__ import annotations

import pytest
import torch

import model
from model.engine import Engine, RequestTooLargeError, SamplingParams
from model.engine.backends import TorchBackend
from model.generate import generate

from .helpers import prompt, reference_logits, rel_err

TOL = 1e-4  # float32 on both sides; they differ only in summation order (seen ~1e-6)


@pytest.fixture(scope="module")
def net(tiny_dir):
    return model.load(tiny_dir, dtype=torch.float32)


def test_chunked_prefill_equals_the_reference_with_selection_active(net):
    tokens = prompt(150)
    assert len(tokens) > 4 * net.cfg.index_topk  # late queries drop most keys
    engine = Engine(net, block_size=16, prefill_chunk=40, max_cached_tokens=1024)
    seq = engine.start(tokens)
    got = engine.prefill(seq, all_logits=True)  # four chunks: 40, 40, 40, 30
    assert got.shape == (150, net.cfg.vocab_size)
    assert rel_err(got, reference_logits(net, tokens)) < TOL
    engine.release(seq)


def test_default_blocks_of_64_and_a_chunk_boundary_inside_a_block(net):
    tokens = prompt(200, seed=1)
    engine = Engine(net, prefill_chunk=50, max_cached_tokens=1024)
    assert engine.block_size == 64
    seq = engine.start(tokens)
    assert rel_err(engine.prefill(seq, all_logits=True), reference_logits(net, tokens)) < TOL


def test_decode_steps_equal_the_reference_teacher_forced(net):
    tokens = prompt(120, seed=2)
    ref = reference_logits(net, tokens)
    engine = Engine(net, block_size=16, prefill_chunk=32, max_cached_tokens=1024)
    seq = engine.start(tokens[:100])
    engine.prefill(seq)
    for p in range(100, 120):
        logits = engine.decode([seq], [tokens[p]])[0]
        assert rel_err(logits, ref[p]) < TOL, p


def test_64_greedy_tokens_identical_to_reference_generation(net):
    tokens = prompt(100, seed=3)
    want = generate(net, torch.tensor([tokens]), 64)[0, 100:].tolist()
    engine = Engine(net, block_size=16, prefill_chunk=48, max_cached_tokens=1024)
    got = [t for _, t in engine.generate([tokens], SamplingParams(max_new_tokens=64))]
    assert got == want


def test_a_batch_decodes_each_sequence_as_if_alone(net):
    prompts = [prompt(n, seed=n) for n in (5, 40, 90)]  # below, around and above index_topk * 4
    engine = Engine(net, block_size=16, prefill_chunk=32, max_cached_tokens=2048)
    outs: dict[int, list[int]] = {0: [], 1: [], 2: []}
    for i, tok in engine.generate(prompts, SamplingParams(max_new_tokens=12)):
        outs[i].append(tok)
    for i, p in enumerate(prompts):
        assert outs[i] == generate(net, torch.tensor([p]), 12)[0, len(p) :].tolist()


def test_small_subchunk_budget_gives_the_same_logits(net):
    """The PyTorch backend splits query rows so transients stay under its budget (no T x S tensor);
    a budget of a few rows must not change the result."""
    tokens = prompt(130, seed=4)
    engine = Engine(net, block_size=16, prefill_chunk=130, max_cached_tokens=1024)
    engine.runner.backend = TorchBackend(budget=20000)  # a handful of query rows per sub-chunk
    seq = engine.start(tokens)
    assert rel_err(engine.prefill(seq, all_logits=True), reference_logits(net, tokens)) < TOL


def test_fp8_indexer_cache_equals_the_fp8_reference(tiny_dir):
    net8 = model.load(tiny_dir, dtype=torch.float32, indexer="fp8")
    tokens = prompt(120, seed=5)
    engine = Engine(net8, block_size=16, prefill_chunk=40, max_cached_tokens=1024)
    assert engine.cache.index.dtype == torch.float8_e4m3fn and engine.cache.index_scale is not None
    seq = engine.start(tokens)
    assert rel_err(engine.prefill(seq, all_logits=True), reference_logits(net8, tokens)) < TOL
    # One float32 power-of-two scale per key, as the reference quantises.
    scales = engine.cache.index_scale[0].view(-1)[engine.cache.rows(torch.tensor(seq.blocks), 120)]
    assert bool((scales > 0).all()) and bool(
        (torch.log2(scales) == torch.log2(scales).round()).all()
    )


def test_sampling_is_seeded_and_respects_top_p(net):
    tokens = prompt(30, seed=6)
    engine = Engine(net, block_size=16, max_cached_tokens=1024)

    def run(**kw):
        return [t for _, t in engine.generate([tokens], SamplingParams(max_new_tokens=16, **kw))]

    a, b = run(temperature=1.5, seed=7), run(temperature=1.5, seed=7)
    assert a == b
    assert run(temperature=1.5, seed=8) != a
    # top_p so small that only the best token survives: greedy.
    assert run(temperature=1.5, top_p=1e-6, seed=9) == run()


def test_the_planner_refuses_an_oversize_request_before_allocating(net):
    engine = Engine(net, block_size=16, max_cached_tokens=256)
    free = engine.pool.available
    with pytest.raises(RequestTooLargeError) as err:
        engine.start(prompt(200), SamplingParams(max_new_tokens=100))
    msg = str(err.value)
    assert "300 tokens" in msg and "256 fit" in msg and "max_new_tokens" in msg
    assert engine.pool.available == free  # nothing was taken


def test_the_planner_sizes_the_cache_and_refuses_a_zero_budget(net):
    engine = Engine(net, block_size=16, max_cached_tokens=1000)
    assert engine.plan.num_blocks == 62 and engine.cache.latent.shape[1] == 62
    with pytest.raises(RequestTooLargeError, match="no room for a KV cache"):
        Engine(net, block_size=16, max_cached_tokens=8)
