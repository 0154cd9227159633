"""Lightning indexer (DeepSeek Sparse Attention) with top-k, in Triton.

score[t, j] = k_scale[j] * sum_h weights[t, h] * relu(q[t, h] . k[j])   for j <= q_pos[t]

`_indexer_scores_kernel` computes one (BN keys) x (BT queries) tile of scores: the key
tile is loaded once and, for each query of the block, one dot (BN, Di) x (Di, Hi) puts
the heads on the accumulator's columns so the weighted head sum is a short in-thread
and in-quad reduction. FP8 operands go straight to the FP8 tensor cores.

Queries are processed in chunks whose (chunk, N) float32 score block fits a fixed work
space (`SCORE_BUDGET` bytes); `kernels.topk` then reduces each row to its top-k by
radix select. The chunk is sized so that chunk * N <= max(T * topk, 16M) scores (and 1 GiB at
most), but holds at least 512 rows when T has them: memory is O(T * topk + N), never O(T * N).

(Running the top-k of one chunk on a side stream beside the scores of the next was
tried on the H200 on 2026-11-28: 18.2 ms against 18.3 ms at 32K, no gain, so the
chunks run one after the other on the caller's stream.)
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._common import (
    FP8_DTYPES,
    check,
    check_same_device,
    check_tensor,
    debug_report,
    interpreting,
    next_pow2,
    output,
)
from ..topk.kernel import radix_topk_

SCORE_BUDGET = 1 << 30  # bytes of float32 scores held at once at most (256M scores)
SCORE_FLOOR = 64 << 20  # ...but never held back below this (small problems keep one launch)
MIN_ROWS = 512  # ...and never fewer query rows than this, when the prompt has them (chunk_rows)


@triton.jit
def _indexer_scores_kernel(
    q_ptr,
    k_ptr,
    ks_ptr,
    w_ptr,
    qpos_ptr,
    bt_ptr,
    lens_ptr,
    s_ptr,
    T,
    N,
    HI,
    stride_qt,
    stride_qh,
    stride_k,
    stride_wt,
    stride_st,
    stride_bt,
    PAGED: tl.constexpr,
    PAGE: tl.constexpr,
    HAS_KS: tl.constexpr,
    BT: tl.constexpr,
    BN: tl.constexpr,
    HP: tl.constexpr,
    DI: tl.constexpr,
    UPCAST: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_q = tl.program_id(1)
    t0 = pid_q * BT
    n0 = pid_n * BN
    if PAGED:
        # Decode: one query per program; keys are positions < seq_lens[b] of its sequence.
        limit = tl.load(lens_ptr + pid_q)
    else:
        # Prefill: keys past the block's last visible position are never read by top-k.
        offs_t = t0 + tl.arange(0, BT)
        qp = tl.load(qpos_ptr + offs_t, mask=offs_t < T, other=-1)
        limit = tl.minimum(tl.max(qp, 0) + 1, N).to(tl.int32)
    if n0 < limit:
        offs_n = n0 + tl.arange(0, BN)
        n_mask = offs_n < limit
        if PAGED:
            block = tl.load(
                bt_ptr + pid_q.to(tl.int64) * stride_bt + offs_n // PAGE, mask=n_mask, other=0
            )
            rows = block.to(tl.int64) * PAGE + offs_n % PAGE
        else:
            rows = offs_n.to(tl.int64)
        offs_d = tl.arange(0, DI)
        k = tl.load(
            k_ptr + rows[:, None] * stride_k + offs_d[None, :], mask=n_mask[:, None], other=0.0
        )  # (BN, DI)
        if UPCAST:
            k = k.to(tl.float32)
        if HAS_KS:
            ks = tl.load(ks_ptr + rows, mask=n_mask, other=0.0)
        offs_h = tl.arange(0, HP)
        h_mask = offs_h < HI
        for i in range(BT):
            t = t0 + i
            t_ok = t < T
            t_in = tl.minimum(t, T - 1).to(
                tl.int64
            )  # rows past T compute a copy of the last row, unstored
            qt = tl.load(
                q_ptr + t_in * stride_qt + offs_h[:, None] * stride_qh + offs_d[None, :],
                mask=h_mask[:, None],
                other=0.0,
            )  # (HP, DI)
            if UPCAST:
                qt = qt.to(tl.float32)
            w = tl.load(w_ptr + t_in * stride_wt + offs_h, mask=h_mask, other=0.0)  # (HP,)
            logits = tl.dot(k, tl.trans(qt))  # (BN, HP) float32
            score = tl.sum(tl.maximum(logits, 0.0) * w[None, :], 1)  # (BN,)
            if HAS_KS:
                score = score * ks
            # (a scalar in a mask trips the CPU interpreter, so fold t_ok into the bound)
            tl.store(
                s_ptr + t_in * stride_st + offs_n, score, mask=offs_n < tl.where(t_ok, limit, 0)
            )


def _scores_config(paged: bool) -> dict:
    """Tiles of the score kernel and of the top-k passes (H200 sweep of 2026-11-28 in BENCHMARKS.md)."""
    if interpreting():
        return {
            "BT": 1 if paged else 4,
            "BN": 32,
            "num_warps": 4,
            "num_stages": 1,
            "topk_block": 1024,
            "topk_warps": 4,
        }
    return {
        "BT": 1 if paged else 16,
        "BN": 128,
        "num_warps": 4,
        "num_stages": 3,
        "topk_block": 1024,
        "topk_warps": 4,
    }


def _check_qkw(q, k, weights, kdim, kname):
    dtypes = (torch.bfloat16, torch.float16, *FP8_DTYPES)
    check_tensor("q", q, 3, dtypes)
    check_tensor(kname, k, kdim, (q.dtype,))
    check_tensor("weights", weights, 2, (torch.float32,))
    check(
        q.stride(-1) == 1 and k.stride(-1) == 1,
        f"q and {kname} must be contiguous in their last dimension",
    )
    T, HI, DI = q.shape
    check(
        k.shape[-1] == DI,
        f"{kname}'s last dimension must be Di={DI} like q's, got {tuple(k.shape)}",
    )
    check(
        DI >= 16 and DI == next_pow2(DI),
        f"the indexer head dim must be a power of two >= 16, got {DI}",
    )
    check(
        tuple(weights.shape) == (T, HI),
        f"weights must be (T, Hi) = {(T, HI)}, got {tuple(weights.shape)}",
    )
    check(weights.stride(-1) == 1, "weights must be contiguous in its last dimension")


def lightning_indexer(
    q: torch.Tensor,
    k: torch.Tensor,
    weights: torch.Tensor,
    topk: int,
    q_pos: torch.Tensor,
    k_scale: torch.Tensor | None = None,
    *,
    out: torch.Tensor | None = None,
    config: dict | None = None,
) -> torch.Tensor:
    """Top-k keys per query by the lightning-indexer score, over a causal prefix of the keys.

    Args:
        q: (T, Hi, Di) bfloat16, float16 or float8_e4m3fn (then its scales are folded into weights).
        k: (N, Di) same dtype as q.
        weights: (T, Hi) float32, every scale folded in (head weight, Hi^-1/2, Di^-1/2, q's FP8 scale).
        topk: keys kept per query.
        q_pos: (T,) int64; key j is visible to query t iff j <= q_pos[t].
        k_scale: optional (N,) float32 positive per-key scale (the FP8 key's dequantisation scale).
        out: optional preallocated (T, topk) int32 contiguous output.
        config: optional tile overrides (BT, BN, num_warps, num_stages, chunk, topk_block), for benchmarks.

    Returns:
        (T, topk) int32 indices of the visible keys with the highest
        k_scale[j] * sum_h weights[t, h] * relu(q[t, h] . k[j]), in no particular order;
        -1 fills the slots past the number of visible keys.
    """
    _check_qkw(q, k, weights, 2, "k")
    check_tensor("q_pos", q_pos, 1, (torch.int64,))
    check(isinstance(topk, int) and topk >= 1, f"topk must be a positive int, got {topk!r}")
    T, HI, DI = q.shape
    N = k.shape[0]
    check(q_pos.shape[0] == T, f"q_pos must be (T={T},), got {tuple(q_pos.shape)}")
    if k_scale is not None:
        check_tensor("k_scale", k_scale, 1, (torch.float32,))
        check(
            k_scale.shape[0] == N and k_scale.stride(0) == 1,
            f"k_scale must be a contiguous (N={N},) tensor",
        )
    check_same_device(
        q=q, k=k, weights=weights, q_pos=q_pos, **({} if k_scale is None else {"k_scale": k_scale})
    )
    out = output("out", out, (T, topk), torch.int32, q.device)
    if T == 0:
        return out
    cfg = dict(_scores_config(False))
    cfg.update(config or {})
    bt, bn = cfg["BT"], cfg["BN"]
    # Lengths of the visible prefixes, clamped to [0, N]; the top-k kernels read no further.
    lengths = (q_pos + 1).clamp(0, N).to(torch.int32)  # (T,)
    width = max(N, 1)
    chunk = cfg.get("chunk") or chunk_rows(T, width, topk, bt)
    scores = torch.empty(
        (min(chunk, triton.cdiv(T, bt) * bt), width), dtype=torch.float32, device=q.device
    )
    ks = k_scale if k_scale is not None else weights
    for c0 in range(0, T, chunk):
        c1 = min(T, c0 + chunk)
        rows = c1 - c0
        if N > 0:
            grid = (triton.cdiv(N, bn), triton.cdiv(rows, bt))
            handle = _indexer_scores_kernel[grid](
                q[c0:c1],
                k,
                ks,
                weights[c0:c1],
                q_pos[c0:c1],
                lengths,
                lengths,
                scores,
                rows,
                N,
                HI,
                q.stride(0),
                q.stride(1),
                k.stride(0),
                weights.stride(0),
                scores.stride(0),
                0,
                PAGED=False,
                PAGE=1,
                HAS_KS=k_scale is not None,
                BT=bt,
                BN=bn,
                HP=max(16, next_pow2(HI)),
                DI=DI,
                UPCAST=interpreting(),
                num_warps=cfg["num_warps"],
                num_stages=cfg["num_stages"],
            )
            debug_report(f"indexer scores {cfg}", handle)
        radix_topk_(
            scores[:rows],
            lengths[c0:c1],
            topk,
            out[c0:c1],
            block=cfg["topk_block"],
            num_warps=cfg["topk_warps"],
        )
    return out


def chunk_rows(T: int, width: int, topk: int, bt: int) -> int:
    """Query rows scored at once. The score block stays within the budget, and the grid's
    second axis (chunk / BT programs) within CUDA's 65535. The budget is the smaller of
    SCORE_BUDGET and what the output itself takes (T * topk), with a small floor, so the scores
    held at once never outgrow O(T * topk + N): a few queries over a long cache get a small block.
    But a prompt of MIN_ROWS or more queries scores at least MIN_ROWS at once (O(N) more): fewer
    rows than twice the SMs send the top-k down its split path, twice as slow for 4096 queries
    at the end of a 128K cache (28.9 ms against 13.6 ms with 512 rows, H200, 2026-12-03)."""
    budget = min(SCORE_BUDGET, max(4 * T * topk, SCORE_FLOOR))
    rows = max(budget // (4 * width), min(T, MIN_ROWS))
    return max(bt, min(rows, 65535 * bt) // bt * bt)


def lightning_indexer_paged(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    weights: torch.Tensor,
    topk: int,
    block_table: torch.Tensor,
    seq_lens: torch.Tensor,
    k_scale_cache: torch.Tensor | None = None,
    *,
    out: torch.Tensor | None = None,
    config: dict | None = None,
) -> torch.Tensor:
    """Decode indexer: top-k cached positions for one query token per sequence, from a paged key cache.

    Args:
        q: (B, Hi, Di) bfloat16, float16 or float8_e4m3fn.
        k_cache: (num_blocks, block_size, Di) q.dtype; position p of sequence b is
            k_cache[block_table[b, p // block_size], p % block_size].
        weights: (B, Hi) float32 with all scales folded in.
        topk: keys kept per query.
        block_table: (B, max_blocks) int32.
        seq_lens: (B,) int32; positions 0 .. seq_lens[b]-1 are visible (the current token included).
        k_scale_cache: optional (num_blocks, block_size) float32 per-key scales, same paging.
        out: optional preallocated (B, topk) int32 contiguous output.
        config: optional overrides (BN, num_warps, num_stages, topk_block, topk_warps, topk_splits).

    Returns:
        (B, topk) int32 positions within each sequence (not physical rows), -1 padded.
    """
    _check_qkw(q, k_cache, weights, 3, "k_cache")
    check_tensor("block_table", block_table, 2, (torch.int32,))
    check_tensor("seq_lens", seq_lens, 1, (torch.int32,))
    check(isinstance(topk, int) and topk >= 1, f"topk must be a positive int, got {topk!r}")
    B, HI, DI = q.shape
    check(k_cache.is_contiguous(), "k_cache must be contiguous")
    page = k_cache.shape[1]
    check(
        block_table.shape[0] == B and block_table.stride(1) == 1,
        f"block_table must be a (B={B}, max_blocks) tensor contiguous in its last dimension",
    )
    check(seq_lens.shape[0] == B, f"seq_lens must be (B={B},), got {tuple(seq_lens.shape)}")
    extra = {}
    if k_scale_cache is not None:
        check_tensor("k_scale_cache", k_scale_cache, 2, (torch.float32,))
        check(
            tuple(k_scale_cache.shape) == tuple(k_cache.shape[:2])
            and k_scale_cache.is_contiguous(),
            f"k_scale_cache must be a contiguous {tuple(k_cache.shape[:2])} tensor",
        )
        extra["k_scale_cache"] = k_scale_cache
    check_same_device(
        q=q, k_cache=k_cache, weights=weights, block_table=block_table, seq_lens=seq_lens, **extra
    )
    out = output("out", out, (B, topk), torch.int32, q.device)
    max_len = block_table.shape[1] * page
    if B == 0:
        return out
    cfg = dict(_scores_config(True))
    cfg.update(config or {})
    bn = cfg["BN"]
    scores = torch.empty((B, max(max_len, 1)), dtype=torch.float32, device=q.device)
    lengths = seq_lens.clamp(0, max_len).to(
        torch.int32
    )  # a length past the table's capacity reads nothing beyond it
    if max_len > 0:
        ks = k_scale_cache if k_scale_cache is not None else weights
        _indexer_scores_kernel[(triton.cdiv(max_len, bn), B)](
            q,
            k_cache,
            ks,
            weights,
            lengths,
            block_table,
            lengths,
            scores,
            B,
            max_len,
            HI,
            q.stride(0),
            q.stride(1),
            k_cache.stride(1),
            weights.stride(0),
            scores.stride(0),
            block_table.stride(0),
            PAGED=True,
            PAGE=page,
            HAS_KS=k_scale_cache is not None,
            BT=1,
            BN=bn,
            HP=max(16, next_pow2(HI)),
            DI=DI,
            UPCAST=interpreting(),
            num_warps=cfg["num_warps"],
            num_stages=cfg["num_stages"],
        )
    # (Counting the top-k's first radix round inside this kernel was tried on 2026-11-28: 49 us
    # against 43 us at 128K keys, the atomic adds of 1024 programs into one histogram contend.)
    return radix_topk_(
        scores,
        lengths,
        topk,
        out,
        splits=cfg.get("topk_splits"),
        block=cfg["topk_block"],
        num_warps=cfg["topk_warps"],
    )
