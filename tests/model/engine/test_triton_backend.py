"""The Triton backend (the `kernels` package) equals the PyTorch backend, on Triton's CPU
interpreter when there is no GPU (`TRITON_INTERPRET=1` must be set before triton is imported;
the kernels upcast their dot operands there because the interpreter's bf16 `tl.dot` is wrong)."""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("triton")

import model
from model.engine import Engine
from model.engine.backends import TorchBackend, TritonBackend, make_backend

from .helpers import prompt, rel_err

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# bf16 weights and caches on both sides; the backends differ in summation order and in where
# bf16 rounding happens (the kernels accumulate in float32): logits agree to ~1e-3 relative.
TOL = 2e-2


@pytest.fixture(scope="module")
def net(tiny_dir, tmp_path_factory):
    """One layer: its inputs are the embeddings, identical for both backends, so both select the
    same keys. With two layers, the first layer's bf16 output differs by rounding (the kernel
    rounds softmax weights to bf16 before the PV product), which flips FP8 roundings of the second
    layer's indexer keys and so, now and then, a near-tie in its top-k: a real but uninteresting
    difference (the selection itself is compared on identical inputs below)."""
    from tests.model.conftest import with_config

    one = with_config(tiny_dir, tmp_path_factory.mktemp("one") / "ckpt", num_hidden_layers=1)
    return model.load(one, device=DEVICE, dtype=torch.bfloat16, indexer="fp8")


@pytest.fixture(scope="module")
def net2(tiny_dir):
    return model.load(tiny_dir, device=DEVICE, dtype=torch.bfloat16, indexer="fp8")


def engines(net):
    kw = {"block_size": 16, "prefill_chunk": 24, "max_cached_tokens": 512, "cuda_graphs": False}
    return Engine(net, backend="torch", **kw), Engine(net, backend="triton", **kw)


def test_auto_picks_triton_on_cuda_and_torch_elsewhere():
    assert isinstance(make_backend("auto", torch.device("cpu")), TorchBackend)
    assert isinstance(make_backend("auto", torch.device("cuda")), TritonBackend)
    assert isinstance(
        make_backend("triton", torch.device("cpu")), TritonBackend
    )  # forced (RunOptions.backend)
    with pytest.raises(ValueError, match="unknown engine backend"):
        make_backend("cuda", torch.device("cpu"))


def test_run_options_force_the_backend(tiny_dir):
    forced = model.load(tiny_dir, dtype=torch.bfloat16, backend="triton")
    assert (
        Engine(forced, block_size=16, max_cached_tokens=256, cuda_graphs=False).backend.name
        == "triton"
    )


def test_triton_prefill_and_decode_equal_the_torch_backend(net):
    ref, tri = engines(net)
    tokens = prompt(40, seed=1)  # 5 x index_topk, two chunks
    a, b = ref.start(tokens), tri.start(tokens)
    la, lb = ref.prefill(a, all_logits=True), tri.prefill(b, all_logits=True)
    assert rel_err(lb, la) < TOL
    for name in ("latent", "index", "index_scale"):
        x, y = ref.cache.tensors()[name], tri.cache.tensors()[name]
        assert (
            torch.equal(x.view(torch.uint8), y.view(torch.uint8))
            if x.dtype == torch.float8_e4m3fn
            else torch.equal(x, y)
        ), name  # the same cache contents: the backends share the write path
    nxt = prompt(2, seed=2)
    for tok in nxt:
        da, db = ref.decode([a], [tok]), tri.decode([b], [tok])
        assert rel_err(db, da) < TOL


@pytest.mark.parametrize("mode", ["gathered", "paged"])
def test_both_prefill_attentions_equal_the_torch_backend(net, mode):
    """The prefill kernel over rows copied out of the paged cache (the default), and the decode
    kernel reading the cache in place, give what the PyTorch backend gives (block size 16 with
    a 24-token chunk: chunks cross blocks)."""
    ref, tri = engines(net)
    tri.backend.prefill_attention = mode
    tokens = prompt(40, seed=3)
    la = ref.prefill(ref.start(tokens), all_logits=True)
    lb = tri.prefill(tri.start(tokens), all_logits=True)
    assert rel_err(lb, la) < TOL


def test_triton_selection_equals_the_torch_selection(net2):
    net = net2
    ref, _tri = engines(net)
    tokens = prompt(72, seed=3)
    seq = ref.start(tokens)
    ref.prefill(seq)
    table = torch.tensor(seq.blocks, dtype=torch.int32, device=DEVICE)
    g = torch.Generator(device="cpu").manual_seed(0)
    hi, di = net.cfg.index_n_heads, net.cfg.index_head_dim
    qi = torch.randn(8, hi, di, generator=g).to(DEVICE)
    q8, _ = ref.cache.quantize_keys(qi.reshape(-1, di))
    q8 = q8.view(8, hi, di)
    w = torch.rand(8, hi, generator=g).to(DEVICE)
    start = 64
    want = TorchBackend().select_prefill(
        ref.cache, 1, table, start, q8, w, None, net.cfg.index_topk
    )
    got = TritonBackend().select_prefill(
        ref.cache, 1, table, start, q8, w, None, net.cfg.index_topk
    )
    assert [set(r) for r in want.tolist()] == [set(r) for r in got.tolist()]
    lens = torch.tensor([72], dtype=torch.int32, device=DEVICE)
    want_d = TorchBackend().select_decode(
        ref.cache, 1, table[None], lens, q8[:1], w[:1], None, net.cfg.index_topk
    )
    got_d = TritonBackend().select_decode(
        ref.cache, 1, table[None], lens, q8[:1], w[:1], None, net.cfg.index_topk
    )
    assert set(want_d[0].tolist()) == set(got_d[0].tolist())


def test_triton_batched_decode_matches_torch(net):
    logits = []
    for engine in engines(net):
        seqs = [engine.start(prompt(6, seed=4)), engine.start(prompt(30, seed=5))]
        for s in seqs:
            engine.prefill(s)
        logits.append(engine.decode(seqs, [7, 9]))  # two lengths, one paged batch
    assert rel_err(logits[1], logits[0]) < TOL


@pytest.mark.parametrize("n", [1, 3])
def test_bf16_expert_kernel_equals_the_batched_fallback(net2, n):
    """Decode-sized groups of bf16 experts through `kernels.grouped_gemm` (forced here: the rule
    takes it on CUDA with the Triton backend) equal the gathered-bmm fallback."""
    net = net2
    engine = Engine(net, backend="triton", block_size=16, max_cached_tokens=256, cuda_graphs=False)
    g = next(e for e in engine.runner.experts if e is not None)
    assert g.stacked and not g.fp8 and g.decode_kernel == (DEVICE == "cuda")
    x = torch.randn(n, net.cfg.hidden_size, generator=torch.Generator().manual_seed(n))
    x = x.to(DEVICE, torch.bfloat16)
    g.decode_kernel, g.use_grouped_mm = False, False
    want = g(x)
    g.decode_kernel = True
    got = g(x)
    assert rel_err(got, want) < TOL
