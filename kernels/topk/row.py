"""Row-wise radix top-k for many rows: one program per row, one launch (used by prefill).

Long rows (more than 16 * topk keys) first guess the threshold: the k-th largest key of a
2048-key sample (16 spread blocks, selected in registers), with k chosen so that about
1.6 * topk keys of the row should pass. One pass copies the keys >= guess to a buffer of
3 * topk; if between topk and 3 * topk passed, the top-k are all among them and an exact
select over the buffer finishes the row. Otherwise, and for shorter rows, the exact path:

Round 0-2 histogram the row's keys 5 bits at a time (32 bins: Triton's histogram costs
about bins/32 operations per element, so few bins are cheap) and fix the top 15 bits of
the k-th largest key. One more pass writes every index whose 15-bit prefix is larger
straight to the output and copies the keys sharing the prefix (the candidates, typically
a few percent of the row) to a per-row buffer. Rounds 3-6 and the final collect then
read only that buffer. If a row has more candidates than the buffer holds (heavy ties),
the same rounds read the whole row instead, filtering on the prefix: slower, same answer.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._common import debug_report

BITS = 5  # digit width of every round
NB = 32  # bins per round (1 << BITS)
FULL_ROUNDS = 3  # rounds over the full row before compaction: 15 bits of prefix
PREFIX_SHIFT = 32 - BITS * FULL_ROUNDS  # key >> PREFIX_SHIFT is the compacted prefix
CAND_CAP = 4096  # candidates kept per row (at least; 3 * topk when larger)
SAMPLE_BLOCKS, SAMPLE_BLOCK = 16, 128  # the sampled threshold reads 16 spread blocks of 128 keys
SAMPLE_MIN_PER_K = 16  # rows shorter than 16 * topk keys go straight to the exact path


@triton.jit
def _ordered_key(x):
    # Signed int32 whose order is the float order (negative floats flip their magnitude bits).
    i = x.to(tl.int32, bitcast=True)
    return tl.where(i < 0, i ^ 0x7FFFFFFF, i)


@triton.jit
def _select_bin(hist, need, NBINS: tl.constexpr):
    # The bin holding the need-th largest element, and how many still to take inside it.
    bins = tl.arange(0, NBINS)
    at_or_above = tl.sum(hist) - tl.cumsum(hist, 0) + hist  # (NBINS,) non-increasing
    b = tl.sum((at_or_above >= need).to(tl.int32)) - 1
    above = tl.sum(tl.where(bins > b, hist, 0))
    return b, need - above


@triton.jit
def _round_hist(
    src,
    n,
    prefix,
    SH: tl.constexpr,
    W: tl.constexpr,
    FIRST: tl.constexpr,
    KEYS: tl.constexpr,
    BLOCK: tl.constexpr,
    NBINS: tl.constexpr,
):
    # Histogram of the W-bit digit at SH of the keys whose bits above SH+W equal prefix.
    # src holds float scores (KEYS=False) or already-ordered int32 keys (the candidates).
    bins = tl.arange(0, NBINS)
    hist = tl.zeros([NBINS], dtype=tl.int32)
    for off in range(0, n, BLOCK):
        offs = off + tl.arange(0, BLOCK)
        m = offs < n
        if KEYS:
            key = tl.load(src + offs, mask=m, other=0)
        else:
            key = _ordered_key(tl.load(src + offs, mask=m, other=0.0))
        if FIRST:
            b = (key >> SH) + (1 << (W - 1))  # the top digit is signed
            sel = m
        else:
            b = (key >> SH) & ((1 << W) - 1)
            sel = m & ((key >> (SH + W)) == prefix)
        n_sel = tl.sum(sel.to(tl.int32))
        if n_sel > 0:  # late rounds select few keys: skip the histogram of empty blocks
            # Unselected keys land in bin 0 and are taken out again (older Triton's histogram has no mask).
            hist += tl.histogram(tl.where(sel, b, 0), NBINS) - tl.where(bins == 0, BLOCK - n_sel, 0)
    return hist


@triton.jit
def _refine_and_collect(
    src,
    sidx,
    n,
    prefix,
    need,
    out_row,
    base,
    p15,
    KEYS: tl.constexpr,
    BLOCK: tl.constexpr,
    NBINS: tl.constexpr,
    DIGIT: tl.constexpr,
    FULL: tl.constexpr,
):
    # The remaining rounds over the keys whose top DIGIT*FULL bits equal p15 (the
    # candidates; FULL = 0: all keys of src, every round), then write the `need` largest of
    # them to out_row[base : base + need]: those above the k-th key first, then as many keys
    # equal to it as still needed.
    need_all = need
    for r in tl.static_range(FULL, (32 + DIGIT - 1) // DIGIT):
        # Round r takes the W bits below the top DIGIT*r (the last round what is left).
        if 32 - DIGIT * (r + 1) >= 0:
            SH = 32 - DIGIT * (r + 1)
            W = DIGIT
        else:
            SH = 0
            W = 32 - DIGIT * r
        hist = _round_hist(src, n, prefix, SH, W, r == 0, KEYS, BLOCK, NBINS)
        chosen, need = _select_bin(hist, need, NBINS)
        if r == 0:
            prefix = chosen - (1 << (W - 1))  # the top digit is signed
        else:
            prefix = (prefix << W) | chosen
    # prefix is now the k-th largest key; `need` of the keys equal to it are taken.
    eq_start = base + need_all - need
    gt_base = base
    eq_base = eq_start
    for off in range(0, n, BLOCK):
        offs = off + tl.arange(0, BLOCK)
        m = offs < n
        if KEYS:
            key = tl.load(src + offs, mask=m, other=0)
            idx = tl.load(sidx + offs, mask=m, other=0)
        else:
            key = _ordered_key(tl.load(src + offs, mask=m, other=0.0))
            idx = offs
        if FULL == 0:
            mine = m
        else:
            mine = m & ((key >> (32 - DIGIT * FULL)) == p15)
        gt = (mine & (key > prefix)).to(tl.int32)
        eq = (mine & (key == prefix)).to(tl.int32)
        g_pos = gt_base + tl.cumsum(gt, 0) - 1
        tl.store(out_row + g_pos, idx, mask=gt > 0)
        e_pos = eq_base + tl.cumsum(eq, 0) - 1
        tl.store(out_row + e_pos, idx, mask=(eq > 0) & (e_pos < eq_start + need))
        gt_base += tl.sum(gt)
        eq_base += tl.sum(eq)


@triton.jit
def _kth_largest(keys, k, NS: tl.constexpr, DIGIT: tl.constexpr, NBINS: tl.constexpr):
    # The k-th largest of NS keys held in registers (radix select, no memory traffic).
    bins = tl.arange(0, NBINS)
    need = k
    prefix = k * 0
    for r in tl.static_range((32 + DIGIT - 1) // DIGIT):
        if 32 - DIGIT * (r + 1) >= 0:
            SH = 32 - DIGIT * (r + 1)
            W = DIGIT
        else:
            SH = 0
            W = 32 - DIGIT * r
        if r == 0:
            b = (keys >> SH) + (1 << (W - 1))
            sel = keys == keys  # noqa: PLR0124 - an all-true mask of keys' shape
        else:
            b = (keys >> SH) & ((1 << W) - 1)
            sel = (keys >> (SH + W)) == prefix
        n_sel = tl.sum(sel.to(tl.int32))
        hist = tl.histogram(tl.where(sel, b, 0), NBINS) - tl.where(bins == 0, NS - n_sel, 0)
        chosen, need = _select_bin(hist, need, NBINS)
        if r == 0:
            prefix = chosen - (1 << (W - 1))
        else:
            prefix = (prefix << W) | chosen
    return prefix


@triton.jit
def _radix_topk_row_kernel(
    s_ptr,
    len_ptr,
    out_ptr,
    ckey_ptr,
    cidx_ptr,
    topk,
    n_cols,
    stride_s,
    stride_o,
    cap,
    sample_min,
    DIGIT: tl.constexpr,
    NBINS: tl.constexpr,
    FULL: tl.constexpr,
    BLOCK: tl.constexpr,
    SAMPLE: tl.constexpr,
    NSB: tl.constexpr,
    SB: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    length = tl.minimum(
        tl.maximum(tl.load(len_ptr + row), 0), n_cols
    )  # lengths outside [0, L] are clamped
    s_row = s_ptr + row * stride_s
    out_row = out_ptr + row * stride_o
    if length <= topk:
        # Every key is taken, at its own position; the rest of the row is -1.
        for off in range(0, length, BLOCK):
            offs = off + tl.arange(0, BLOCK)
            tl.store(out_row + offs, offs, mask=offs < length)
        for off in range(length, topk, BLOCK):
            offs = off + tl.arange(0, BLOCK)
            tl.store(out_row + offs, tl.full([BLOCK], -1, tl.int32), mask=offs < topk)
    else:
        ckey = ckey_ptr + row * cap
        cidx = cidx_ptr + row * cap
        done = topk * 0
        if SAMPLE:  # noqa: SIM102 - a constexpr: the sampled path is compiled out when off
            if length >= sample_min:
                # Fast path: guess a threshold from NSB evenly spread blocks of SB keys, aiming
                # at 1.6 * topk keys above it; one pass copies the keys >= guess to the buffer.
                # If between topk and cap keys qualify, the top-k are all among them (the k-th
                # key is >= guess), and an exact select over the buffer finishes the row.
                i = tl.arange(0, NSB * SB)
                pos = (i // SB) * (length // NSB) + i % SB
                skeys = _ordered_key(tl.load(s_row + pos))
                k_s = tl.minimum((8 * topk * (NSB * SB)) // (5 * length) + 1, NSB * SB)
                guess = _kth_largest(skeys, k_s, NSB * SB, DIGIT, NBINS)
                c_n = tl.zeros([], dtype=tl.int32)
                for off in range(0, length, BLOCK):
                    offs = off + tl.arange(0, BLOCK)
                    m = offs < length
                    key = _ordered_key(tl.load(s_row + offs, mask=m, other=0.0))
                    cand = (m & (key >= guess)).to(tl.int32)
                    c_pos = c_n + tl.cumsum(cand, 0) - 1
                    keep = (cand > 0) & (c_pos < cap)
                    tl.store(ckey + c_pos, key, mask=keep)
                    tl.store(cidx + c_pos, offs, mask=keep)
                    c_n += tl.sum(cand)
                if (c_n >= topk) & (c_n <= cap):
                    _refine_and_collect(
                        ckey,
                        cidx,
                        c_n,
                        topk * 0,
                        topk,
                        out_row,
                        topk * 0,
                        topk * 0,
                        True,
                        BLOCK,
                        NBINS,
                        DIGIT,
                        0,
                    )
                    done = topk * 0 + 1
        if done == 0:
            _exact_row(s_row, out_row, ckey, cidx, length, topk, cap, DIGIT, NBINS, FULL, BLOCK)


@triton.jit
def _exact_row(
    s_row,
    out_row,
    ckey,
    cidx,
    length,
    topk,
    cap,
    DIGIT: tl.constexpr,
    NBINS: tl.constexpr,
    FULL: tl.constexpr,
    BLOCK: tl.constexpr,
):
    # Exact path (and the fallback of the sampled one): FULL rounds over the whole row fix the
    # threshold's top DIGIT*FULL bits, then the keys sharing them are compacted and refined.
    if True:
        need = topk
        prefix = topk * 0
        for r in tl.static_range(FULL):
            SH = 32 - DIGIT * (r + 1)
            hist = _round_hist(s_row, length, prefix, SH, DIGIT, r == 0, False, BLOCK, NBINS)
            chosen, need = _select_bin(hist, need, NBINS)
            if r == 0:
                prefix = chosen - (1 << (DIGIT - 1))
            else:
                prefix = (prefix << DIGIT) | chosen
        # Compaction pass: keys with a larger prefix are in the top-k for sure; keys with
        # this prefix are the candidates for the `need` slots left.
        g_base = tl.zeros([], dtype=tl.int32)
        c_base = tl.zeros([], dtype=tl.int32)
        for off in range(0, length, BLOCK):
            offs = off + tl.arange(0, BLOCK)
            m = offs < length
            key = _ordered_key(tl.load(s_row + offs, mask=m, other=0.0))
            pre = key >> (32 - DIGIT * FULL)
            gt = (m & (pre > prefix)).to(tl.int32)
            cand = (m & (pre == prefix)).to(tl.int32)
            tl.store(out_row + g_base + tl.cumsum(gt, 0) - 1, offs, mask=gt > 0)
            c_pos = c_base + tl.cumsum(cand, 0) - 1
            keep = (cand > 0) & (c_pos < cap)
            tl.store(ckey + c_pos, key, mask=keep)
            tl.store(cidx + c_pos, offs, mask=keep)
            g_base += tl.sum(gt)
            c_base += tl.sum(cand)
        if c_base <= cap:
            _refine_and_collect(
                ckey,
                cidx,
                c_base,
                prefix,
                need,
                out_row,
                g_base,
                prefix,
                True,
                BLOCK,
                NBINS,
                DIGIT,
                FULL,
            )
        else:  # too many candidates for the buffer: filter the whole row again (same answer)
            _refine_and_collect(
                s_row,
                cidx,
                length,
                prefix,
                need,
                out_row,
                g_base,
                prefix,
                False,
                BLOCK,
                NBINS,
                DIGIT,
                FULL,
            )


def radix_topk_rows(
    scores: torch.Tensor,
    lengths: torch.Tensor,
    topk: int,
    out: torch.Tensor,
    block: int = 2048,
    num_warps: int = 4,
    cap: int | None = None,
    sample: bool = True,
    sample_blocks: int = SAMPLE_BLOCKS,
    sample_block: int = SAMPLE_BLOCK,
    sample_min_per_k: int = SAMPLE_MIN_PER_K,
) -> torch.Tensor:
    """Fill out (R, topk) with each row's top-k indices: one program per row (no checks here).

    cap: candidate buffer per row (default max(CAND_CAP, 3 * topk)); sample: try the sampled
    threshold first on rows of at least max(sample_min_per_k * topk, 2 * sample_blocks *
    sample_block) keys (the sample sizes are knobs for the tests, which need short rows).

    Why only long rows: on the H200 (2026-11-28) the sampled path (then for rows >= 4 * topk)
    made the 128K-token layer's indexer 291 -> 247 ms but a 32K one 17.9 -> 18.4 ms (it saves
    three of four passes over a row but adds the sample's select and registers); for rows
    >= 16 * topk with a 2048-key sample the 128K layer took 232 ms.
    """
    R, L = scores.shape
    cap = max(1, min(cap if cap is not None else max(CAND_CAP, 3 * topk), L))
    cand = torch.empty((2, R, cap), dtype=torch.int32, device=scores.device)  # keys, indices
    sample_min = max(sample_min_per_k * topk, 2 * sample_blocks * sample_block)
    # Rows are at most L long: when none can reach the limit (a 32K layer: L = 16 * topk exactly,
    # only its last row would), compile without the sampled path and its registers.
    sample = sample and L > sample_min
    handle = _radix_topk_row_kernel[(R,)](
        scores,
        lengths,
        out,
        cand[0],
        cand[1],
        topk,
        L,
        scores.stride(0),
        out.stride(0),
        cap,
        sample_min,
        DIGIT=BITS,
        NBINS=NB,
        FULL=FULL_ROUNDS,
        BLOCK=block,
        SAMPLE=sample,
        NSB=sample_blocks,
        SB=sample_block,
        num_warps=num_warps,
    )
    debug_report(
        f"radix row kernel block={block} warps={num_warps} cap={cap} sample={sample}", handle
    )
    return out
