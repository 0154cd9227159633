"""Exact row-wise top-k indices by radix select, in Triton.

Each float32 score is mapped to an int32 key whose signed order is the float order.
Histogram rounds over the row pin down the k-th largest key a few bits at a time
(each round only counts keys that match the prefix fixed so far); a collect pass then
writes every index whose key is above that threshold and as many as are still needed
of those equal to it. Nothing of size (rows, row length) is allocated.

Two drivers:
- Many rows (prefill): `row.py`, one program per row, all rounds and the collect in one
  launch, histograms in registers, 5-bit digits (Triton's histogram costs about bins/32
  operations per element: each thread owns bins/32 bins and popcounts ballots for each),
  candidate compaction after 15 bits and, on long rows, a sampled threshold first.
- Few long rows (decode, batch 1): the row is split over many programs (grid axis 1);
  four launches of `_radix_hist_kernel` with 8-bit digits meet through atomic adds into
  a zeroed (R, 4, 256) work space, and `_radix_collect_kernel` hands out output slots
  with atomic counters.

Measured on the H200 (2026-11-28, 32K-token causal layer): 2048-bin digits took 65 ms,
256-bin digits 12.5 ms, the row kernel 8.3 ms; see kernels/BENCHMARKS.md.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._common import check, check_same_device, check_tensor, debug_report
from .row import _ordered_key, _select_bin, radix_topk_rows

NUM_BINS = 256
ROUNDS = 4  # 4 x 8 bits = the whole 32-bit key


@triton.jit
def _prefix(hist_row, topk, ROUND: tl.constexpr, NB: tl.constexpr):
    # Recompute from the finished histograms of earlier rounds the key prefix the
    # threshold must have (its top 8 * ROUND bits, as the arithmetic shift of the key
    # gives them), and how many elements with that prefix are still needed.
    bins = tl.arange(0, NB)
    need = topk
    prefix = topk * 0
    for r in tl.static_range(ROUND):
        b, need = _select_bin(tl.load(hist_row + r * NB + bins), need, NB)
        if r == 0:
            prefix = b - 128  # the top byte is signed
        else:
            prefix = (prefix << 8) | b
    return prefix, need


@triton.jit
def _radix_hist_kernel(
    s_ptr,
    len_ptr,
    hist_ptr,
    topk,
    n_cols,
    seg,
    stride_s,
    stride_w,
    ROUND: tl.constexpr,
    BLOCK: tl.constexpr,
    NB: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    sp = tl.program_id(1)
    length = tl.minimum(
        tl.maximum(tl.load(len_ptr + row), 0), n_cols
    )  # lengths outside [0, L] are clamped
    if length > topk:  # shorter rows take every element; they need no histogram
        hist_row = hist_ptr + row * stride_w
        prefix, _need = _prefix(hist_row, topk, ROUND, NB)
        bins = tl.arange(0, NB)
        hist = tl.zeros([NB], dtype=tl.int32)
        start = sp * seg
        end = tl.minimum(start + seg, length)
        for off in range(start, end, BLOCK):
            offs = off + tl.arange(0, BLOCK)
            m = offs < end
            key = _ordered_key(tl.load(s_ptr + row * stride_s + offs, mask=m, other=0.0))
            if ROUND == 0:
                b = (key >> 24) + 128
                sel = m
            else:
                b = (key >> (24 - 8 * ROUND)) & 0xFF
                sel = m & ((key >> (32 - 8 * ROUND)) == prefix)
            # Unselected elements are counted in bin 0 and taken out again: this
            # avoids histogram's mask argument, which older Triton releases lack.
            n_out = BLOCK - tl.sum(sel.to(tl.int32))
            hist += tl.histogram(tl.where(sel, b, 0), NB) - tl.where(bins == 0, n_out, 0)
        tl.atomic_add(hist_row + ROUND * NB + bins, hist)


@triton.jit
def _radix_collect_kernel(
    s_ptr,
    len_ptr,
    hist_ptr,
    cnt_ptr,
    out_ptr,
    topk,
    n_cols,
    seg,
    stride_s,
    stride_o,
    stride_w,
    BLOCK: tl.constexpr,
    NB: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    sp = tl.program_id(1)
    length = tl.minimum(
        tl.maximum(tl.load(len_ptr + row), 0), n_cols
    )  # lengths outside [0, L] are clamped
    out_row = out_ptr + row * stride_o
    start = sp * seg
    end = tl.minimum(start + seg, length)
    if length <= topk:
        # Every element is taken, at its own position; the rest of the row is -1.
        for off in range(start, end, BLOCK):
            offs = off + tl.arange(0, BLOCK)
            tl.store(out_row + offs, offs, mask=offs < end)
        if sp == 0:
            for off in range(length, topk, BLOCK):
                offs = off + tl.arange(0, BLOCK)
                tl.store(out_row + offs, tl.full([BLOCK], -1, tl.int32), mask=offs < topk)
    else:
        thr, need_eq = _prefix(hist_ptr + row * stride_w, topk, 4, NB)
        n_gt_total = topk - need_eq
        for off in range(start, end, BLOCK):
            offs = off + tl.arange(0, BLOCK)
            m = offs < end
            key = _ordered_key(tl.load(s_ptr + row * stride_s + offs, mask=m, other=0.0))
            gt = (m & (key > thr)).to(tl.int32)
            eq = (m & (key == thr)).to(tl.int32)
            # Output slots are handed out by per-row counters shared by the row's programs.
            g0 = tl.atomic_add(cnt_ptr + row * stride_w, tl.sum(gt))
            e0 = tl.atomic_add(cnt_ptr + row * stride_w + 1, tl.sum(eq))
            g_pos = g0 + tl.cumsum(gt, 0) - 1
            tl.store(out_row + g_pos, offs, mask=gt > 0)
            e_pos = e0 + tl.cumsum(eq, 0) - 1
            tl.store(out_row + n_gt_total + e_pos, offs, mask=(eq > 0) & (e_pos < need_eq))


def _default_splits(rows: int, max_len: int, block: int, device: torch.device) -> int:
    """Split long rows when there are too few rows to cover the SMs twice."""
    if device.type != "cuda":
        return 1
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    if rows >= 2 * sms:
        return 1
    return max(1, min(triton.cdiv(2 * sms, rows), triton.cdiv(max_len, 2 * block)))


def split_plan(
    rows: int, length: int, block: int, device: torch.device, splits: int | None = None
) -> tuple[int, int]:
    """(programs per row, elements per program) that radix_topk_ will use for a (rows, length) score block."""
    if splits is None:
        splits = _default_splits(rows, length, block, device)
    seg = triton.cdiv(triton.cdiv(max(length, 1), splits), block) * block
    return max(1, triton.cdiv(max(length, 1), seg)), seg


def new_work(rows: int, device: torch.device) -> torch.Tensor:
    """Zeroed work space of the split path: (rows, 4 rounds x 256 bins + 2 counters) int32."""
    return torch.zeros((rows, ROUNDS * NUM_BINS + 2), dtype=torch.int32, device=device)


def radix_topk_(
    scores: torch.Tensor,
    lengths: torch.Tensor,
    topk: int,
    out: torch.Tensor,
    splits: int | None = None,
    block: int = 1024,
    num_warps: int = 4,
    cand_cap: int | None = None,
    sample: bool = True,
) -> torch.Tensor:
    """Host wrapper without checks (callers inside the package check first): fills out (R, topk).

    One split per row runs the fused row kernel (cand_cap: its candidate buffer); several splits
    per row (few long rows: decode) run four 8-bit histogram launches and a collect launch.
    """
    R, L = scores.shape
    if R == 0:
        return out
    splits, seg = split_plan(R, L, block, scores.device, splits)
    if splits == 1:
        # Many rows: one program per row does everything (see row.py).
        return radix_topk_rows(
            scores,
            lengths,
            topk,
            out,
            block=block,
            num_warps=num_warps,
            cap=cand_cap,
            sample=sample,
        )
    work = new_work(R, scores.device)
    hist, cnt = work[:, : ROUNDS * NUM_BINS], work[:, ROUNDS * NUM_BINS :]
    grid = (R, splits)
    handle = None
    for rnd in range(ROUNDS):
        handle = _radix_hist_kernel[grid](
            scores,
            lengths,
            hist,
            topk,
            L,
            seg,
            scores.stride(0),
            work.stride(0),
            ROUND=rnd,
            BLOCK=block,
            NB=NUM_BINS,
            num_warps=num_warps,
        )
    if handle is not None:
        debug_report(f"radix hist splits={splits} block={block}", handle)
    _radix_collect_kernel[grid](
        scores,
        lengths,
        hist,
        cnt,
        out,
        topk,
        L,
        seg,
        scores.stride(0),
        out.stride(0),
        work.stride(0),
        BLOCK=block,
        NB=NUM_BINS,
        num_warps=num_warps,
    )
    return out


def radix_topk(
    scores: torch.Tensor,
    lengths: torch.Tensor,
    topk: int,
    *,
    out: torch.Tensor | None = None,
    splits: int | None = None,
) -> torch.Tensor:
    """Indices of the topk largest entries of each row's first lengths[r] scores.

    Args:
        scores: (R, L) float32, rows contiguous; entries at or past lengths[r] are never read.
        lengths: (R,) int32 visible prefix of each row (clamped to [0, L]).
        topk: number of indices per row.
        out: optional preallocated (R, topk) int32 contiguous output.
        splits: programs per row (None: enough to fill the GPU when rows are few).

    Returns:
        (R, topk) int32 column indices, in no particular order within the first
        min(lengths[r], topk) slots; a row with lengths[r] < topk lists 0 .. lengths[r]-1 and pads with -1. Ties at the threshold are broken arbitrarily.
    """
    check_tensor("scores", scores, 2, (torch.float32,))
    check_tensor("lengths", lengths, 1, (torch.int32,))
    check_same_device(scores=scores, lengths=lengths)
    check(scores.stride(1) == 1, "scores must be contiguous in its last dimension")
    check(
        lengths.shape[0] == scores.shape[0],
        f"lengths must be (R={scores.shape[0]},), got {tuple(lengths.shape)}",
    )
    check(isinstance(topk, int) and topk >= 1, f"topk must be a positive int, got {topk!r}")
    check(
        splits is None or (isinstance(splits, int) and splits >= 1),
        f"splits must be >= 1, got {splits!r}",
    )
    shape = (scores.shape[0], topk)
    if out is None:
        out = torch.empty(shape, dtype=torch.int32, device=scores.device)
    check(
        isinstance(out, torch.Tensor)
        and tuple(out.shape) == shape
        and out.dtype == torch.int32
        and out.is_contiguous()
        and out.device == scores.device,
        f"out must be a contiguous {shape} int32 tensor on {scores.device}",
    )
    return radix_topk_(scores, lengths.contiguous(), topk, out, splits=splits)


__all__ = ["radix_topk", "radix_topk_"]
