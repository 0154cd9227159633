"""FP8 routed experts on the engine: stacked in FP8 (no dequantised copy, no loop over experts),
equal to the reference path that keeps FP8 (`keep_fp8=True`), and the Triton kernel path (on
Triton's CPU interpreter here: `TRITON_INTERPRET=1` before triton is imported) agreeing with the
batched fallback."""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import model
import model.engine.moe as moe_mod
from model.engine import Engine, SamplingParams
from model.engine.moe import GroupedExperts, _dequantize
from model.generate import generate

from .helpers import prompt, reference_logits, rel_err

TOL = 1e-4  # float32 on both sides, the same dequantised weights; only summation order differs
# The kernel path quantises activations to e4m3 per (row, 32 columns): 3 mantissa bits, up to 6%
# error per element, and these tiny widths (D 64, I 32) average little of it away: the routed
# output differs from the float32 fallback by ~4-5% (Frobenius, seen), the logits by ~2%.
# Against an emulation that quantises the activations the same way only the kernel's bf16
# rounding remains (~2e-3). A wrong expert, scale block, row or gate/up half gives O(1).
KERNEL_TOL = 0.1
EMULATION_TOL = 1e-2


@pytest.fixture(scope="module")
def net8(fp8_dir):
    return model.load(fp8_dir, dtype=torch.float32, keep_fp8=True)


def moe_layer(engine: Engine) -> tuple[int, GroupedExperts]:
    return next((i, e) for i, e in enumerate(engine.runner.experts) if e is not None)


def count_calls(modules) -> tuple[list[str], list]:
    calls: list[str] = []
    hooks = [
        m.register_forward_pre_hook(lambda m, a: calls.append(type(m).__name__)) for m in modules
    ]
    return calls, hooks


def test_fp8_experts_are_stacked_in_fp8_and_the_engine_equals_the_reference(net8, fp8_dir):
    tokens = prompt(90, seed=8)
    engine = Engine(net8, block_size=16, prefill_chunk=40, max_cached_tokens=1024)
    i, g = moe_layer(engine)
    moe = net8.model.layers[i].mlp
    e_count, inter, dim = (
        len(moe.experts),
        moe.experts[0].gate_proj.out_features,
        net8.cfg.hidden_size,
    )
    assert g.stacked and g.fp8 and not g.use_kernel  # CPU: the batched fallback
    assert g.gate_up.dtype == g.down.dtype == torch.float8_e4m3fn
    assert g.gate_up.shape == (e_count, 2 * inter, dim) and g.down.shape == (e_count, dim, inter)
    assert g.gate_up_scale.shape == (e_count, 2 * inter // 32, dim // 32)
    assert g.down_scale.shape == (e_count, dim // 32, inter // 32)
    # The experts' own parameters are views of the stacks: one copy of the weights.
    e3 = moe.experts[3]
    assert e3.up_proj.weight.data_ptr() == g.gate_up[3, inter:].data_ptr()
    assert e3.down_proj.weight_scale_inv.data_ptr() == g.down_scale[3].data_ptr()
    # ...and the reference path on those views still gives what a fresh load gives.
    fresh = model.load(fp8_dir, dtype=torch.float32, keep_fp8=True)
    want = reference_logits(fresh, tokens)
    assert torch.equal(reference_logits(net8, tokens), want)

    calls, hooks = count_calls([moe, *moe.experts])
    try:
        seq = engine.start(tokens)
        got = engine.prefill(seq, all_logits=True)  # 80 pairs per chunk: the chunked path
        step = engine.decode([seq], [tokens[-1]])[0]  # 2 pairs: the gathered path
    finally:
        for h in hooks:
            h.remove()
    assert calls == []  # neither MoE.forward nor any expert module ran
    assert rel_err(got, want) < TOL
    assert rel_err(step, reference_logits(net8, tokens + [tokens[-1]])[-1]) < TOL


def test_fp8_greedy_tokens_identical_to_the_reference(net8):
    tokens = prompt(60, seed=9)
    want = generate(net8, torch.tensor([tokens]), 24)[0, 60:].tolist()
    engine = Engine(net8, block_size=16, prefill_chunk=32, max_cached_tokens=1024)
    got = [t for _, t in engine.generate([tokens], SamplingParams(max_new_tokens=24))]
    assert got == want


def test_fp8_fallback_chunks_give_the_same_experts(net8, monkeypatch):
    """Dequantising two experts at a time (and gathering two pairs at a time) changes nothing."""
    engine = Engine(net8, block_size=16, max_cached_tokens=256)
    i, g = moe_layer(engine)
    x = torch.randn(37, net8.cfg.hidden_size, generator=torch.Generator().manual_seed(3))
    whole, one = g(x), g(x[:3])  # 74 pairs (chunked path), 6 pairs (gathered path)
    monkeypatch.setattr(moe_mod, "DEQUANT_CHUNK", 2 * g.gate_up[0].numel())
    assert torch.equal(g(x), whole) and torch.equal(g(x[:3]), one)
    assert rel_err(whole, net8.model.layers[i].mlp(x)) < TOL


def emulated(g: GroupedExperts, x: torch.Tensor) -> torch.Tensor:
    """The routed experts in float32 with the kernel path's FP8 activations: x and the SwiGLU
    output quantised per (row, block) by the reference quantiser, the gate/up output rounded to
    bf16 as the kernel stores it."""
    from kernels.moe import naive

    def fp8(v, swiglu=False):
        q, s = naive.quantize_rows(v, g.block[0], swiglu)
        return q.float() * s.repeat_interleave(g.block[0], dim=1)

    ids, weights = g.moe.gate(x)
    k = ids.shape[1]
    e = ids.reshape(-1)  # (P,) pair p = token p // k
    gu = _dequantize(g.gate_up[e], g.gate_up_scale[e], g.block, torch.float32)  # (P, 2I, D)
    h = torch.bmm(gu, fp8(x.repeat_interleave(k, dim=0))[:, :, None])[:, :, 0].bfloat16()
    dn = _dequantize(g.down[e], g.down_scale[e], g.block, torch.float32)  # (P, D, I)
    y = torch.bmm(dn, fp8(h, swiglu=True)[:, :, None])[:, :, 0]  # (P, D)
    return (y.view(-1, k, y.shape[1]) * weights[:, :, None]).sum(1)  # (N, D)


@pytest.mark.parametrize("n", [1, 37])
def test_kernel_path_agrees_with_the_fallback(net8, n):
    pytest.importorskip("triton")
    from kernels.testing import rel_err as frobenius

    engine = Engine(net8, block_size=16, max_cached_tokens=256, backend="triton", cuda_graphs=False)
    _, g = moe_layer(engine)
    assert not g.use_kernel  # the rule: FP8 tensor cores only, and these weights are on the CPU
    x = torch.randn(n, net8.cfg.hidden_size, generator=torch.Generator().manual_seed(n))
    shared = g.moe.shared_experts(x)
    g.use_kernel = False
    want = g(x) - shared
    g.use_kernel = True  # forced: the interpreter runs it on the CPU
    calls, hooks = count_calls([g.moe, *g.moe.experts])
    try:
        got = g(x) - shared
    finally:
        for h in hooks:
            h.remove()
    assert calls == []
    assert frobenius(got, want) < KERNEL_TOL
    assert frobenius(got, emulated(g, x)) < EMULATION_TOL


def test_the_engine_on_the_kernel_path_follows_the_reference(net8):
    """A whole prefill with the kernel path forced: logits within FP8 activation error."""
    tokens = prompt(40, seed=10)
    engine = Engine(net8, block_size=16, prefill_chunk=40, max_cached_tokens=512)
    _, g = moe_layer(engine)
    g.use_kernel = True
    seq = engine.start(tokens)
    got = engine.prefill(seq, all_logits=True)
    assert rel_err(got, reference_logits(net8, tokens)) < KERNEL_TOL / 2
