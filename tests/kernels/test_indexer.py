"""Lightning indexer (prefill and paged decode) against the plain-PyTorch reference.

Top-k results are compared as sets with `topk_mismatch`: keys whose exact scores differ
from the k-th score by less than rtol * max|score| may be swapped, because the kernel
sums heads in another order (float32 rounding, about 1e-7 relative per operation;
rtol 1e-5 is a hundred times that and far below the typical gap between neighbours).
"""

import pytest
import torch

from kernels import KernelInputError, lightning_indexer, lightning_indexer_paged
from kernels.indexer import naive
from kernels.testing import poison_, topk_mismatch

RTOL = 1e-5
FP8 = torch.float8_e4m3fn


@pytest.mark.parametrize("T,N,topk,dtype", [(63, 257, 16, torch.bfloat16), (65, 500, 64, FP8)])
def test_indexer_matches_naive(device, T, N, topk, dtype):
    Hi, Di = 4, 32
    q = torch.randn(T, Hi, Di, device=device).to(dtype)
    k = torch.randn(N, Di, device=device).to(dtype)
    weights = torch.randn(T, Hi, device=device)
    k_scale = torch.rand(N, device=device) + 0.5 if dtype == FP8 else None
    # Positions of a prefill chunk after some cached tokens, plus a few out-of-range ones.
    q_pos = torch.arange(T, device=device) + (N - T) // 2
    q_pos[0], q_pos[1], q_pos[-1] = -1, 3, N + 10
    out = poison_(torch.empty(T, topk, dtype=torch.int32, device=device))
    lightning_indexer(q, k, weights, topk, q_pos, k_scale, out=out)
    scores = naive.index_scores(q, k, weights, k_scale)
    lengths = (q_pos + 1).clamp(0, N)
    assert topk_mismatch(out, scores, lengths, topk, RTOL) is None


@pytest.mark.parametrize("dtype,splits", [(torch.bfloat16, None), (FP8, None), (FP8, 3)])
def test_paged_indexer_matches_naive(device, dtype, splits):
    # splits=3 forces the split top-k (several programs per row, atomics), as decode at batch 1 uses.
    B, Hi, Di, page, topk = 4, 4, 32, 16, 16
    num_blocks, max_blocks = 50, 12
    k_cache = torch.randn(num_blocks, page, Di, device=device).to(dtype)
    k_scale = torch.rand(num_blocks, page, device=device) + 0.5
    block_table = (
        torch.randperm(num_blocks, device=device)[: B * max_blocks]
        .view(B, max_blocks)
        .to(torch.int32)
    )
    seq_lens = torch.tensor([5, 16, 100, 190], dtype=torch.int32, device=device)
    q = torch.randn(B, Hi, Di, device=device).to(dtype)
    weights = torch.randn(B, Hi, device=device)
    out = poison_(torch.empty(B, topk, dtype=torch.int32, device=device))
    lightning_indexer_paged(
        q,
        k_cache,
        weights,
        topk,
        block_table,
        seq_lens,
        k_scale,
        out=out,
        config=None if splits is None else {"topk_splits": splits, "topk_block": 32},
    )
    for b in range(B):
        n = int(seq_lens[b])
        keys = naive.paged_keys(k_cache, block_table, n, b)  # (n, Di)
        scales = naive.paged_keys(k_scale, block_table, n, b)  # (n,)
        scores = naive.index_scores(q[b : b + 1], keys, weights[b : b + 1], scales)  # (1, n)
        assert topk_mismatch(out[b : b + 1], scores, seq_lens[b : b + 1], topk, RTOL) is None


def test_indexer_rejects_bad_input(device):
    q = torch.randn(3, 4, 32, device=device, dtype=torch.bfloat16)
    k = torch.randn(10, 32, device=device, dtype=torch.bfloat16)
    w = torch.randn(3, 4, device=device)
    pos = torch.arange(3, device=device)
    with pytest.raises(KernelInputError, match="k must be bfloat16"):
        lightning_indexer(q, k.float(), w, 4, pos)
    with pytest.raises(KernelInputError, match="weights must be \\(T, Hi\\)"):
        lightning_indexer(q, k, w[:, :2], 4, pos)
    with pytest.raises(KernelInputError, match="q_pos must be int64"):
        lightning_indexer(q, k, w, 4, pos.int())
    with pytest.raises(KernelInputError, match="head dim must be a power of two"):
        lightning_indexer(q[..., :24], k[:, :24], w, 4, pos)
    with pytest.raises(KernelInputError, match="k_scale must be"):
        lightning_indexer(q, k, w, 4, pos, torch.ones(9, device=device))


def test_scores_held_at_once_stay_within_o_of_t_times_topk():
    """The (T, N) score matrix is never held whole: at most max(T * topk, floor) scores, plus one
    tile of rows, and at most MIN_ROWS rows of N (the top-k's fast path needs as many rows),
    whatever N is (checked at the sizes of the issue, no GPU needed)."""
    from kernels.indexer.kernel import MIN_ROWS, SCORE_BUDGET, SCORE_FLOOR, chunk_rows

    bt = 64
    for T, N, topk in [
        (131072, 131072, 2048),
        (32768, 32768, 2048),
        (4096, 131072, 2048),
        (1, 131072, 2048),
        (500, 257, 16),
    ]:
        rows = chunk_rows(T, N, topk, bt)
        held = 4 * min(rows, T + bt) * N
        floor = max(4 * T * topk, SCORE_FLOOR, 4 * min(T, MIN_ROWS) * N)
        assert held <= floor + 4 * bt * N, (T, N, topk)
        assert held <= max(SCORE_BUDGET, 4 * MIN_ROWS * N) + 4 * bt * N
        assert rows % bt == 0 and rows >= bt
        assert rows >= min(T, MIN_ROWS) // bt * bt  # enough rows for the row-wise top-k


def test_indexer_in_several_chunks_matches_naive(device):
    """Rows scored a chunk at a time (as long prefills are) give the same top-k."""
    from kernels.indexer.kernel import _scores_config

    bt = _scores_config(False)["BT"]
    T, N, topk, Hi, Di = 2 * bt + 5, 200, 16, 4, 32
    q = torch.randn(T, Hi, Di, device=device).to(torch.bfloat16)
    k = torch.randn(N, Di, device=device).to(torch.bfloat16)
    weights = torch.randn(T, Hi, device=device)
    q_pos = torch.arange(T, device=device) % N
    out = poison_(torch.empty(T, topk, dtype=torch.int32, device=device))
    lightning_indexer(q, k, weights, topk, q_pos, out=out, config={"chunk": bt})
    scores = naive.index_scores(q, k, weights, None)
    assert topk_mismatch(out, scores, (q_pos + 1).clamp(0, N), topk, RTOL) is None
