"""Plain-PyTorch FP8 grouped GEMM: dequantise both operands, then one float32 matmul per expert."""

from __future__ import annotations

import torch
import torch.nn.functional as F

FP8_MAX = 448.0


def quantize_rows(
    x: torch.Tensor, block: int = 128, swiglu: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference for kernels.quantize_rows: (P, K) e4m3 and (P, K / block) power-of-two scales."""
    v = x.float()
    if swiglu:
        gate, up = v.chunk(2, dim=-1)
        v = F.silu(gate) * up  # (P, K)
    p, k = v.shape
    v = v.view(p, k // block, block)  # (P, K/block, block)
    amax = v.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12)
    scale = torch.exp2(torch.ceil(torch.log2(amax / FP8_MAX)))  # (P, K/block, 1)
    q = (v / scale).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    return q.view(p, k), scale.view(p, k // block)


def dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """float32 `q * scale` for q (..., R, C) and one scale per block, scale (..., R / br, C / bc)."""
    br, bc = q.shape[-2] // scale.shape[-2], q.shape[-1] // scale.shape[-1]
    full = scale.float().repeat_interleave(br, dim=-2).repeat_interleave(bc, dim=-1)
    return q.float() * full


def fp8_grouped_gemm(
    x: torch.Tensor,
    x_scale: torch.Tensor,
    w: torch.Tensor,
    w_scale: torch.Tensor,
    ends: torch.Tensor,
) -> torch.Tensor:
    """Reference for kernels.fp8_grouped_gemm: (P, N) bfloat16."""
    xd = x.float() * x_scale.float().repeat_interleave(x.shape[1] // x_scale.shape[1], dim=1)
    return _per_expert(xd, lambda e: dequantize(w[e], w_scale[e]), w.shape[1], ends)


def grouped_gemm(x: torch.Tensor, w: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
    """Reference for kernels.grouped_gemm: (P, N) bfloat16, float32 products."""
    return _per_expert(x.float(), lambda e: w[e].float(), w.shape[1], ends)


def _per_expert(x: torch.Tensor, weight, n: int, ends: torch.Tensor) -> torch.Tensor:
    """float32 rows `x (P, K)` times `weight(e) (N, K)` of the expert owning each run of rows,
    rounded once to bfloat16."""
    out = torch.zeros(x.shape[0], n, dtype=torch.float32, device=x.device)
    start = 0
    for e, end in enumerate(ends.tolist()):
        out[start:end] = x[start:end] @ weight(e).T  # (rows, N)
        start = end
    return out.to(torch.bfloat16)
