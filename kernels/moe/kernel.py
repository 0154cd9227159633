"""FP8 grouped GEMM for routed experts (DeepSeek block scaling) and its activation quantiser, in
Triton; the same kernel without scales is a bf16 grouped GEMM for decode-sized groups.

out[r] = sum_kb (x[r, kb] . w[e(r), :, kb]^T) * x_scale[r, kb] * w_scale[e(r), n // QB, kb]

over K-blocks kb of QB columns, where e(r) is the expert whose rows `[ends[e-1], ends[e])` hold r.
The FP8 dot of one (BM, QB) x (QB, BN) block accumulates in float32 and is scaled before it is added
to the float32 accumulator (DeepSeek's "promotion" per 128-wide block), so the tensor cores' FP8
accumulation never spans two scales.

The tile schedule is built on the device, from `ends` alone: the grid is (N / BN, slots) with
`slots = min(P, cdiv(P, BM) + E)`, an upper bound on the number of (expert, m-tile) pairs that
depends on P only. Each program loads the E group ends, counts every expert's m-tiles, takes a
cumulative sum and finds its own (expert, m-tile); programs past the last tile exit. No group size
reaches the host, so a decode step with this kernel can be captured in a CUDA graph.
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

FP8_MAX = tl.constexpr(448.0)  # largest finite float8_e4m3fn value (a constexpr: kernels read it)


@triton.jit
def _round_nearest_even(v, MANT: tl.constexpr, EMIN: tl.constexpr):
    """float32 v rounded to a float format with MANT mantissa bits and smallest normal exponent
    EMIN, ties to even (range checks are the caller's). Only for the interpreter, whose float32 ->
    e4m3 conversion drops the carry when rounding up overflows the mantissa (31.7 becomes 16, not
    32) and whose float32 -> bf16 conversion truncates; a value rounded here converts exactly."""
    mag = tl.abs(v)
    e = tl.maximum(tl.floor(tl.log2(tl.maximum(mag, 1e-38))), EMIN)
    ulp = tl.exp2(e - MANT)
    y = mag / ulp  # exact: ulp is a power of two
    f = tl.floor(y)
    odd = f - 2.0 * tl.floor(f * 0.5)
    r = tl.where((y - f > 0.5) | ((y - f == 0.5) & (odd == 1.0)), f + 1.0, f) * ulp
    return tl.where(v < 0, -r, r)


@triton.jit
def _fp8_grouped_gemm_kernel(
    x_ptr,
    xs_ptr,
    w_ptr,
    ws_ptr,
    ends_ptr,
    out_ptr,
    N,
    K,
    stride_x,
    stride_xs,
    stride_we,
    stride_wn,
    stride_wse,
    stride_wsn,
    stride_o,
    E: tl.constexpr,
    EP: tl.constexpr,
    QB: tl.constexpr,
    BM: tl.constexpr,
    BN: tl.constexpr,
    UPCAST: tl.constexpr,
    SCALED: tl.constexpr,
):
    pid_n = tl.program_id(0)
    slot = tl.program_id(1)
    # Device-side schedule: which (expert, m-tile) this slot is.
    offs_e = tl.arange(0, EP)
    ends = tl.load(ends_ptr + offs_e, mask=offs_e < E, other=0)
    starts = tl.load(ends_ptr + offs_e - 1, mask=(offs_e >= 1) & (offs_e < E), other=0)
    tiles = tl.where(offs_e < E, (ends - starts + BM - 1) // BM, 0)  # (EP,) m-tiles per expert
    cum = tl.cumsum(tiles, 0)  # inclusive
    if slot >= tl.sum(tiles, 0):
        return
    expert = tl.sum((cum <= slot).to(tl.int32), 0)
    m_tile = slot - tl.sum(tl.where(offs_e < expert, tiles, 0), 0)
    row_end = tl.sum(tl.where(offs_e == expert, ends, 0), 0)
    row0 = tl.sum(tl.where(offs_e == expert, starts, 0), 0) + m_tile * BM

    offs_m = row0 + tl.arange(0, BM)
    m_mask = offs_m < row_end
    offs_n = pid_n * BN + tl.arange(0, BN)
    n_mask = offs_n < N
    offs_k = tl.arange(0, QB)
    rows = offs_m.to(tl.int64)
    e64 = expert.to(tl.int64)
    x_tile = x_ptr + rows[:, None] * stride_x + offs_k[None, :]  # (BM, QB)
    w_tile = w_ptr + e64 * stride_we + offs_n.to(tl.int64)[:, None] * stride_wn + offs_k[None, :]
    xs_col = xs_ptr + rows * stride_xs  # (BM,)
    ws_col = ws_ptr + e64 * stride_wse + (offs_n // QB).to(tl.int64) * stride_wsn  # (BN,)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for kb in range(K // QB):
        a = tl.load(x_tile + kb * QB, mask=m_mask[:, None], other=0.0)  # (BM, QB) e4m3
        b = tl.load(w_tile + kb * QB, mask=n_mask[:, None], other=0.0)  # (BN, QB) e4m3
        if UPCAST:
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        part = tl.dot(a, tl.trans(b))  # (BM, BN) float32
        if SCALED:
            sa = tl.load(xs_col + kb, mask=m_mask, other=0.0)
            sb = tl.load(ws_col + kb, mask=n_mask, other=0.0)
            acc += part * sa[:, None] * sb[None, :]
        else:
            acc += part
    if UPCAST:
        acc = _round_nearest_even(acc, 7, -126)  # bf16, see _round_nearest_even
    out = out_ptr + rows[:, None] * stride_o + offs_n[None, :]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=m_mask[:, None] & n_mask[None, :])


@triton.jit
def _quantize_rows_kernel(
    x_ptr,
    q_ptr,
    s_ptr,
    P,
    half,
    stride_x,
    stride_q,
    stride_s,
    SWIGLU: tl.constexpr,
    QB: tl.constexpr,
    BR: tl.constexpr,
    EXACT_ROUND: tl.constexpr,
):
    pid_r = tl.program_id(0)
    kb = tl.program_id(1)
    rows = (pid_r * BR + tl.arange(0, BR)).to(tl.int64)
    cols = kb * QB + tl.arange(0, QB)
    mask = rows[:, None] < P
    src = x_ptr + rows[:, None] * stride_x + cols[None, :]  # (BR, QB)
    v = tl.load(src, mask=mask, other=0.0).to(tl.float32)
    if SWIGLU:
        up = tl.load(src + half, mask=mask, other=0.0).to(tl.float32)
        v = v / (1.0 + tl.exp(-v)) * up  # silu(gate) * up
    # The smallest power of two s with amax / s <= 448, as model/fp8.py's pow2_scale.
    amax = tl.maximum(tl.max(tl.abs(v), 1), 1e-12)  # (BR,)
    scale = tl.exp2(tl.ceil(tl.log2(amax / FP8_MAX)))
    q = tl.minimum(tl.maximum(v / scale[:, None], -FP8_MAX), FP8_MAX)
    if EXACT_ROUND:
        q = _round_nearest_even(q, 3, -6)  # e4m3
    tl.store(q_ptr + rows[:, None] * stride_q + cols[None, :], q.to(tl.float8e4nv), mask=mask)
    tl.store(s_ptr + rows * stride_s + kb, scale, mask=rows < P)


def _config(P: int, E: int, N: int) -> dict:
    """Tiles by rows per expert: decode-sized groups get short, narrow tiles (more programs over
    the weights, which are what it reads); prefill-sized ones get 128 x 128 tiles."""
    per_expert = P / max(E, 1)
    if per_expert <= 16:
        return {"BM": 16, "BN": 64, "num_warps": 4, "num_stages": 4}
    if per_expert <= 64:
        return {"BM": 64, "BN": 128, "num_warps": 4, "num_stages": 4}
    return {"BM": 128, "BN": 128, "num_warps": 8, "num_stages": 3}


def fp8_grouped_gemm(
    x: torch.Tensor,
    x_scale: torch.Tensor,
    w: torch.Tensor,
    w_scale: torch.Tensor,
    ends: torch.Tensor,
    *,
    out: torch.Tensor | None = None,
    config: dict | None = None,
) -> torch.Tensor:
    """Grouped `x @ w[e]^T` over rows sorted by expert, with DeepSeek's FP8 block scaling.

    Args:
        x: (P, K) float8_e4m3fn, the rows of expert e at `[ends[e-1], ends[e])` (ends[-1] = 0).
        x_scale: (P, K / QB) float32, x's scale per (row, QB-column block) (`quantize_rows`).
        w: (E, N, K) float8_e4m3fn, one weight matrix per expert, rows contiguous.
        w_scale: (E, N / QB, K / QB) float32, one scale per QB x QB weight block.
        ends: (E,) int32 non-decreasing, ends[E-1] = P (read on the device only, never checked).
        out: optional preallocated (P, N) bfloat16 contiguous output.
        config: optional tile overrides (BM, BN, num_warps, num_stages), for benchmarks.

    QB (the block, 128 in DeepSeek's checkpoints; a power of two >= 16) is K / x_scale.shape[1];
    N and K must be multiples of it.

    Returns:
        (P, N) bfloat16: row r is `sum_kb dot(x[r, kb] * x_scale[r, kb], w[e, :, kb] * w_scale[e, :, kb])`.
    """
    check_tensor("x", x, 2, FP8_DTYPES)
    check_tensor("x_scale", x_scale, 2, (torch.float32,))
    check_tensor("w", w, 3, FP8_DTYPES)
    check_tensor("w_scale", w_scale, 3, (torch.float32,))
    check_tensor("ends", ends, 1, (torch.int32,))
    P, K = x.shape
    E, N, KW = w.shape
    check(KW == K, f"w must be (E, N, K={K}), got {tuple(w.shape)}")
    check(x_scale.shape[0] == P and x_scale.shape[1] >= 1, f"x_scale must be (P={P}, K / QB)")
    qb = K // x_scale.shape[1]
    check(
        qb >= 16 and qb & (qb - 1) == 0 and K % qb == 0 and N % qb == 0,
        f"the block K / x_scale.shape[1] = {K} / {x_scale.shape[1]} must be a power of two >= 16 "
        f"dividing K={K} and N={N}",
    )
    check(
        tuple(w_scale.shape) == (E, N // qb, K // qb),
        f"w_scale must be (E, N / {qb}, K / {qb}) = {(E, N // qb, K // qb)}, got {tuple(w_scale.shape)}",
    )
    check(tuple(ends.shape) == (E,), f"ends must be (E={E},), got {tuple(ends.shape)}")
    check(
        x.stride(1) == 1 and w.stride(2) == 1 and x_scale.stride(1) == 1 and w_scale.stride(2) == 1,
        "x, w, x_scale and w_scale must be contiguous along their last axis",
    )
    check(ends.is_contiguous(), "ends must be contiguous")
    device = check_same_device(x=x, x_scale=x_scale, w=w, w_scale=w_scale, ends=ends)
    out = output("out", out, (P, N), torch.bfloat16, device)
    if P == 0 or N == 0:
        return out
    return _launch(x, x_scale, w, w_scale, ends, out, qb, config, "fp8 grouped gemm")


def grouped_gemm(
    x: torch.Tensor,
    w: torch.Tensor,
    ends: torch.Tensor,
    *,
    out: torch.Tensor | None = None,
    config: dict | None = None,
) -> torch.Tensor:
    """Grouped GEMM in bf16 (the same kernel and device-side schedule, no scales).

    Args:
        x: (P, K) bfloat16 rows sorted by expert.
        w: (E, N, K) bfloat16, contiguous along K.
        ends: (E,) int32, the end of each expert's rows in x (a cumulative sum of group sizes).
        out: optional preallocated (P, N) bfloat16 output.
        config: optional tile overrides (BM, BN, BK, num_warps, num_stages), for benchmarks.

    Returns:
        (P, N) bfloat16: row r is `x[r] @ w[e(r)].T`.

    Few rows per expert (decode) read the chosen experts' weights at close to the copy
    bandwidth, where `torch._grouped_mm` reached about half of it (kernels/BENCHMARKS.md).
    """
    check_tensor("x", x, 2, (torch.bfloat16,))
    check_tensor("w", w, 3, (torch.bfloat16,))
    check_tensor("ends", ends, 1, (torch.int32,))
    P, K = x.shape
    E, N, KW = w.shape
    check(KW == K, f"w must be (E, N, K={K}), got {tuple(w.shape)}")
    bk = next((b for b in (64, 32, 16) if K % b == 0), 0)
    check(bk > 0, f"K={K} must be a multiple of 16")
    check(tuple(ends.shape) == (E,), f"ends must be (E={E},), got {tuple(ends.shape)}")
    check(x.stride(1) == 1 and w.stride(2) == 1, "x and w must be contiguous along K")
    check(ends.is_contiguous(), "ends must be contiguous")
    device = check_same_device(x=x, w=w, ends=ends)
    out = output("out", out, (P, N), torch.bfloat16, device)
    if P == 0 or N == 0:
        return out
    bk = (config or {}).get("BK", bk)
    return _launch(x, None, w, None, ends, out, bk, config, "bf16 grouped gemm")


def _launch(x, x_scale, w, w_scale, ends, out, qb: int, config: dict | None, label: str):
    """Launch the grouped kernel over checked inputs: block-scaled FP8 when scales are given,
    plain bf16 otherwise (the scale pointers then alias x and w and are never read)."""
    P, K = x.shape
    E, N, _ = w.shape
    scaled = x_scale is not None
    cfg = _config(P, E, N)
    cfg.update({k: v for k, v in (config or {}).items() if k != "BK"})
    bm, bn = cfg["BM"], cfg["BN"]
    grid = (triton.cdiv(N, bn), min(P, triton.cdiv(P, bm) + E))
    handle = _fp8_grouped_gemm_kernel[grid](
        x,
        x_scale if scaled else x,
        w,
        w_scale if scaled else w,
        ends,
        out,
        N,
        K,
        x.stride(0),
        x_scale.stride(0) if scaled else 0,
        w.stride(0),
        w.stride(1),
        w_scale.stride(0) if scaled else 0,
        w_scale.stride(1) if scaled else 0,
        out.stride(0),
        E=E,
        EP=next_pow2(E),
        QB=qb,
        BM=bm,
        BN=bn,
        UPCAST=interpreting(),
        SCALED=scaled,
        num_warps=cfg["num_warps"],
        num_stages=cfg["num_stages"],
    )
    debug_report(f"{label} {cfg}", handle)
    return out


def quantize_rows(
    x: torch.Tensor,
    block: int = 128,
    *,
    swiglu: bool = False,
    out: torch.Tensor | None = None,
    scale_out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantise each (row, block of columns) of x to e4m3 with a power-of-two float32 scale.

    Args:
        x: (P, C) bfloat16, float16 or float32, rows contiguous.
        block: columns per scale, a power of two.
        swiglu: quantise `silu(x[:, :C/2]) * x[:, C/2:]` (computed in float32) instead of x: the
            down projection's input straight from the gate/up projection's output.
        out, scale_out: optional preallocated outputs.

    Returns:
        (q (P, K) float8_e4m3fn, scale (P, K / block) float32) with K = C (C / 2 with swiglu) and
        `q * scale ~= x` blockwise; scale is the smallest power of two with amax / scale <= 448.
    """
    check_tensor("x", x, 2, (torch.bfloat16, torch.float16, torch.float32))
    check(
        isinstance(block, int) and block >= 1 and block & (block - 1) == 0,
        f"block must be a power of two, got {block!r}",
    )
    P, C = x.shape
    K = C // 2 if swiglu else C
    check(
        K % block == 0 and (not swiglu or C % 2 == 0),
        f"x's width {C} must be {'2 x ' if swiglu else ''}a multiple of the block {block}",
    )
    check(x.stride(1) == 1, "x must be contiguous along its last axis")
    device = check_same_device(x=x)
    q = output("out", out, (P, K), torch.float8_e4m3fn, device)
    scale = output("scale_out", scale_out, (P, K // block), torch.float32, device)
    if P == 0 or K == 0:
        return q, scale
    br = 16
    _quantize_rows_kernel[(triton.cdiv(P, br), K // block)](
        x,
        q,
        scale,
        P,
        K,
        x.stride(0),
        q.stride(0),
        scale.stride(0),
        SWIGLU=swiglu,
        QB=block,
        BR=br,
        EXACT_ROUND=interpreting(),
        num_warps=4,
    )
    return q, scale
