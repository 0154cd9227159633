"""FP8 checkpoints (e4m3 + block scales) and the FP8 lightning indexer."""

from __future__ import annotations

import pytest
import torch

import model
from model.fp8 import FP8Linear, dequantize_blocks, quantize_blocks, quantize_vectors
from model.indexer import causal_key_mask, hadamard, index_scores, select_topk, topk_overlap

from .conftest import rel_err


def test_block_quantisation_round_trip():
    w = torch.randn(70, 100, generator=torch.Generator().manual_seed(0))  # partial edge blocks
    q, scale = quantize_blocks(w, (32, 32))
    assert q.dtype == torch.float8_e4m3fn and scale.shape == (3, 4)
    assert torch.equal(scale, torch.exp2(torch.log2(scale).round()))  # ue8m0: powers of two
    back = dequantize_blocks(q, scale, (32, 32), torch.float32)
    # e4m3 keeps 3 mantissa bits: round-to-nearest errs by at most 2^-4 of the value, and values
    # far below the block maximum are subnormal with an absolute step of 2^-9 * scale.
    step = scale.repeat_interleave(32, 0)[:70].repeat_interleave(32, 1)[:, :100] * 2.0**-9
    assert bool(((back - w).abs() <= w.abs() * 2.0**-4 + step).all())
    assert torch.equal(dequantize_blocks(q, scale, (32, 32), torch.float32, low_memory=True), back)
    with pytest.raises(ValueError, match="scale shape"):
        dequantize_blocks(q, scale[:2], (32, 32))


def test_vector_quantisation_uses_the_fp8_range():
    x = torch.randn(5, 16, 128) * 30
    q, s = quantize_vectors(x)
    assert s.shape == (5, 16, 1) and bool(
        (q.float().abs().amax(-1) >= 448 / 2).all()
    )  # power-of-two scale: max in [224, 448]
    assert rel_err(q.float() * s, x) < 2.0**-4


@torch.no_grad()
def test_fp8_checkpoint_kept_in_fp8_equals_dequantised_on_load(fp8_dir):
    kept = model.load(fp8_dir, dtype=torch.float32, keep_fp8=True)
    layer = kept.model.layers[1]
    assert isinstance(layer.self_attn.q_b_proj, FP8Linear) and isinstance(
        layer.mlp.experts[3].up_proj, FP8Linear
    )
    assert layer.self_attn.q_b_proj.weight.dtype == torch.float8_e4m3fn
    assert not isinstance(kept.lm_head, FP8Linear)  # stored in bf16, as released
    dequant = model.load(fp8_dir, dtype=torch.float32)
    assert dequant.model.layers[1].self_attn.q_b_proj.weight.dtype == torch.float32
    x = torch.randint(0, 400, (2, 40), generator=torch.Generator().manual_seed(0))
    # Same dequantised values, same float32 matmuls: only summation order could differ.
    assert rel_err(kept(x), dequant(x)) < 1e-5


@torch.no_grad()
def test_fp8_checkpoint_agrees_with_bf16_checkpoint(fp8_dir, tiny_dense_dir, tmp_path):
    """The same random weights stored in bf16 and in FP8 (32x32 blocks, power-of-two scales).

    Tolerance: e4m3 keeps 3 mantissa bits, so each weight is off by at most 2^-4 of itself and by
    ~2.7% RMS (checked below on one matrix). A token's logits pass through ~14 quantised matmuls in
    series (2 layers x q_a, q_b, kv_a, kv_b, o, gate/up, down) whose independent errors add in
    quadrature (~10%), and random unit-gain tiny layers amplify them somewhat (observed: 17% RMS).
    Bound: 25% RMS and 3 of 4 greedy tokens unchanged. index_topk is lifted above the length on
    both sides, because random weights give near-tied indexer scores whose selection flips under
    any perturbation and would swamp the metric.
    """
    from .conftest import with_config

    fp8_dense = with_config(fp8_dir, tmp_path / "fp8_dense", index_topk=4096)
    a = model.load(fp8_dense, dtype=torch.float32)
    b = model.load(tiny_dense_dir, dtype=torch.float32)
    w, wq = b.model.layers[1].self_attn.q_b_proj.weight, a.model.layers[1].self_attn.q_b_proj.weight
    assert 0.01 < float((w - wq).norm() / w.norm()) < 0.04
    x = torch.randint(0, 400, (2, 32), generator=torch.Generator().manual_seed(1))
    ya, yb = a(x), b(x)
    assert float((ya - yb).norm() / yb.norm()) < 0.25
    assert float((ya.argmax(-1) == yb.argmax(-1)).float().mean()) >= 0.75


@torch.no_grad()
def test_fp8_kept_in_bf16_is_exactly_the_dequantised_bf16_model(fp8_dir):
    """e4m3 values times power-of-two scales are exact in bf16, so both paths see identical weights."""
    kept = model.load(fp8_dir, keep_fp8=True)
    dequant = model.load(fp8_dir)
    x = torch.randint(0, 400, (1, 16), generator=torch.Generator().manual_seed(3))
    assert torch.equal(kept(x), dequant(x))


def _random_indexer_inputs(t: int, heads: int = 64, dim: int = 128, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(1, t, heads, dim, generator=g)
    k = torch.randn(1, t, dim, generator=g) + 0.5 * torch.randn(
        dim, generator=g
    )  # shared direction, as LayerNorm'd keys have
    w = torch.randn(1, t, heads, generator=g) * heads**-0.5
    return q, k, w


def test_hadamard_is_orthonormal():
    h = hadamard(64)
    assert torch.allclose(h @ h.T, torch.eye(64), atol=1e-6)
    with pytest.raises(ValueError, match="power-of-two"):
        hadamard(48)


def test_fp8_indexer_selection_overlaps_the_exact_one():
    """FP8 scores differ from exact ones by a few percent, so only near-ties change places: at the
    released head shape (64 heads x 128) over 512 keys with top-64, more than 90% of the chosen keys
    agree; and the overlap measure itself is 1 for identical and lower for unrelated selections."""
    t, k = 512, 64
    q, keys, w = _random_indexer_inputs(t)
    visible = causal_key_mask(0, t, t, q.device)[None]
    exact = select_topk(index_scores(q, keys, w, fp8=False), visible, k)
    fp8 = select_topk(index_scores(q, keys, w, fp8=True), visible, k)
    assert topk_overlap(exact, exact) == 1.0
    overlap = topk_overlap(exact, fp8)
    assert overlap > 0.9
    shuffled = select_topk(
        torch.rand(1, t, t, generator=torch.Generator().manual_seed(9)), visible, k
    )
    assert topk_overlap(exact, shuffled) < overlap - 0.3
    # Exact scores are invariant to the rotation FP8 mode applies; only quantisation moves them.
    h = hadamard(128)
    assert (
        rel_err(index_scores(q @ h, keys @ h, w, fp8=False), index_scores(q, keys, w, fp8=False))
        < 1e-5
    )


@torch.no_grad()
def test_fp8_indexer_model_runs_and_stays_close(tiny_dir):
    exact = model.load(tiny_dir, dtype=torch.float32)
    fp8 = model.load(tiny_dir, dtype=torch.float32, indexer="fp8")
    x = torch.randint(0, 400, (1, 8), generator=torch.Generator().manual_seed(2))
    # With <= index_topk keys every visible key is kept in both modes: identical outputs.
    assert rel_err(fp8(x), exact(x)) < 1e-5
