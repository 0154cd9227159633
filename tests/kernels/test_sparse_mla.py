"""Sparse MLA prefill and paged decode against the plain-PyTorch reference.

Tolerances: outputs are bf16, so each element carries a rounding error of up to 2^-8
relative (the CPU interpreter truncates instead of rounding, which doubles it) and on
the GPU the probabilities enter the value product as bf16 (another 2^-9); a
norm-relative error below 1e-2 leaves room for both and still catches any wrong row,
head or index (those give errors of order 1). The log-sum-exp comes from float32 dots
of bf16 inputs, accurate to about 1e-6 relative; 1e-4 is asserted.
"""

import pytest
import torch

from kernels import KernelInputError, sparse_mla, sparse_mla_decode
from kernels.mla import naive
from kernels.testing import poison_, rel_err

OUT_TOL, LSE_TOL = 1e-2, 1e-4


def random_indices(T, topk, N, device, frac_skip=0.2):
    idx = torch.stack([torch.randperm(N, device=device)[:topk] for _ in range(T)]).to(
        torch.int32
    )  # (T, topk)
    idx[torch.rand(T, topk, device=device) < frac_skip] = -1
    return idx


@pytest.mark.parametrize(
    "T,N,H,topk,dv,dr,lazy,scale_mul",
    [
        (63, 257, 8, 64, 512, 64, False, 1.0),
        (17, 500, 20, 16, 64, 32, False, 1.0),
        # Lazy rescaling, with scores spread wide enough (x8) that some tiles do rescale.
        (33, 257, 8, 64, 512, 64, True, 8.0),
    ],
)
def test_sparse_mla_matches_naive(device, T, N, H, topk, dv, dr, lazy, scale_mul):
    q = torch.randn(T, H, dv + dr, device=device, dtype=torch.bfloat16)
    kv = torch.randn(N, dv + dr, device=device, dtype=torch.bfloat16)
    idx = random_indices(T, topk, N, device)
    idx[3] = -1  # a query with nothing to attend to: output 0, lse -inf
    idx[5, : topk // 2] = N + 7  # out of range counts as skipped
    scale = (dv + dr) ** -0.5 * scale_mul
    out = poison_(torch.empty(T, H, dv, device=device, dtype=torch.bfloat16))
    lse = poison_(torch.empty(T, H, device=device))
    sparse_mla(q, kv, idx, scale, dv=dv, out=out, lse=lse, config={"LAZY": lazy})
    ref_out, ref_lse = naive.sparse_mla(q.float(), kv.float(), idx, scale, dv=dv)
    assert rel_err(out, ref_out) < OUT_TOL
    assert rel_err(lse, ref_lse) < LSE_TOL
    assert bool((out[3] == 0).all()) and bool(torch.isneginf(lse[3]).all())


@pytest.mark.parametrize("splits,S", [(1, 1), (3, 1), (4, 2)])
def test_sparse_mla_decode_matches_naive(device, splits, S):
    B, H, dv, dr, page, topk = 5, 8, 512, 64, 16, 64
    num_blocks, max_blocks = 80, 16
    cache = torch.randn(num_blocks, page, dv + dr, device=device, dtype=torch.bfloat16)
    block_table = (
        torch.randperm(num_blocks, device=device)[: B * max_blocks]
        .view(B, max_blocks)
        .to(torch.int32)
    )
    seq_lens = torch.tensor([1, 17, 100, 255, 256], dtype=torch.int32, device=device)
    q = torch.randn(B, S, H, dv + dr, device=device, dtype=torch.bfloat16)
    idx = torch.stack(
        [torch.randint(-1, int(n) + 3, (S, topk), device=device) for n in seq_lens]
    ).to(torch.int32)
    scale = 0.07
    out = poison_(torch.empty(B, S, H, dv, device=device, dtype=torch.bfloat16))
    lse = poison_(torch.empty(B, S, H, device=device))
    if S == 1:
        sparse_mla_decode(
            q[:, 0],
            cache,
            block_table,
            seq_lens,
            idx[:, 0],
            scale,
            num_splits=splits,
            out=out[:, 0],
            lse=lse[:, 0],
        )
    else:
        sparse_mla_decode(
            q, cache, block_table, seq_lens, idx, scale, num_splits=splits, out=out, lse=lse
        )
    ref_out, ref_lse = naive.sparse_mla_decode(
        q.float(), cache.float(), block_table, seq_lens, idx, scale
    )
    assert rel_err(out, ref_out) < OUT_TOL
    assert rel_err(lse, ref_lse) < LSE_TOL


def test_sparse_mla_rejects_bad_input(device):
    q = torch.randn(4, 8, 576, device=device, dtype=torch.bfloat16)
    kv = torch.randn(9, 576, device=device, dtype=torch.bfloat16)
    idx = torch.zeros(4, 16, dtype=torch.int32, device=device)
    with pytest.raises(KernelInputError, match="indices must be int32"):
        sparse_mla(q, kv, idx.long(), 0.1)
    with pytest.raises(KernelInputError, match="kv must be bfloat16"):
        sparse_mla(q, kv.float(), idx, 0.1)
    with pytest.raises(KernelInputError, match="kv must be \\(N, 576\\)"):
        sparse_mla(q, kv[:, :512], idx, 0.1)
    with pytest.raises(KernelInputError, match="dv must be a power of two"):
        sparse_mla(q, kv, idx, 0.1, dv=500)
    with pytest.raises(KernelInputError, match="rope part"):
        sparse_mla(q, kv, idx, 0.1, dv=256)
    with pytest.raises(KernelInputError, match="sm_scale"):
        sparse_mla(q, kv, idx, float("nan"))
    with pytest.raises(KernelInputError, match="seq_lens must be"):
        sparse_mla_decode(
            q,
            kv.view(1, 9, 576),
            idx[:, :1],
            torch.ones(3, dtype=torch.int32, device=device),
            idx,
            0.1,
        )
