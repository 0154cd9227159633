"""FP8 e4m3 helpers: 128x128 block-scaled weights and power-of-two per-vector activations.

Released checkpoints store each quantised weight `W (out, in)` as float8_e4m3fn plus
`weight_scale_inv (ceil(out/b), ceil(in/b))` float32 with `W_real = W_fp8 * scale_inv` blockwise.
"""

from __future__ import annotations

import math

import torch
from torch import nn

FP8_MAX = 448.0  # largest finite float8_e4m3fn value


def _expand_blocks(
    scale: torch.Tensor, shape: tuple[int, int], block: tuple[int, int]
) -> torch.Tensor:
    """Repeat a per-block scale `(R, C)` to a per-element one `shape`."""
    rows = scale.repeat_interleave(block[0], dim=0)[: shape[0]]  # (out, C)
    return rows.repeat_interleave(block[1], dim=1)[:, : shape[1]]  # (out, in)


def block_scale_shape(shape: tuple[int, int], block: tuple[int, int]) -> tuple[int, int]:
    """Shape of `weight_scale_inv` for a weight of `shape`."""
    return math.ceil(shape[0] / block[0]), math.ceil(shape[1] / block[1])


def dequantize_blocks(
    weight: torch.Tensor,
    scale_inv: torch.Tensor,
    block: tuple[int, int],
    dtype: torch.dtype = torch.bfloat16,
    low_memory: bool = False,
) -> torch.Tensor:
    """FP8 weight `(out, in)` and its block scales -> `dtype` weight `(out, in)`.

    `low_memory` converts one row of blocks at a time, so the float32 temporaries stay at
    `block[0] x in` instead of the whole matrix (the loader uses it to bound host memory).
    """
    expected = block_scale_shape(tuple(weight.shape), block)
    if tuple(scale_inv.shape) != expected:
        raise ValueError(
            f"scale shape {tuple(scale_inv.shape)} does not fit weight {tuple(weight.shape)} "
            f"with blocks {block}: expected {expected}"
        )
    if not low_memory:
        full = _expand_blocks(scale_inv.float(), tuple(weight.shape), block)
        return (weight.float() * full).to(dtype)
    out = torch.empty(weight.shape, dtype=dtype, device=weight.device)
    cols = scale_inv.float().repeat_interleave(block[1], dim=1)[:, : weight.shape[1]]  # (R, in)
    for r in range(expected[0]):
        rows = slice(r * block[0], (r + 1) * block[0])
        out[rows] = (weight[rows].float() * cols[r]).to(dtype)  # (b0, in)
    return out


def pow2_scale(amax: torch.Tensor) -> torch.Tensor:
    """Smallest power of two `s` with `amax / s <= 448` (the ue8m0 scale format)."""
    ratio = amax.float().clamp(min=1e-12) / FP8_MAX
    return torch.exp2(torch.ceil(torch.log2(ratio)))


def quantize_blocks(
    weight: torch.Tensor, block: tuple[int, int], pow2: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Float weight `(out, in)` -> (float8_e4m3fn weight, float32 `scale_inv` per block)."""
    out_f, in_f = weight.shape
    rows, cols = block_scale_shape((out_f, in_f), block)
    padded = weight.new_zeros(rows * block[0], cols * block[1], dtype=torch.float32)
    padded[:out_f, :in_f] = weight.float()
    tiles = padded.view(rows, block[0], cols, block[1])  # (R, b0, C, b1)
    amax = tiles.abs().amax(dim=(1, 3))  # (R, C)
    scale = pow2_scale(amax) if pow2 else amax.clamp(min=1e-12) / FP8_MAX
    full = _expand_blocks(scale, (out_f, in_f), block)
    q = (weight.float() / full).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    return q, scale.float()


def quantize_vectors(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantise each last-axis vector of `x (..., D)` to e4m3 with a power-of-two scale.

    Returns (x_fp8 `(..., D)`, scale `(..., 1)` float32) with `x ~= x_fp8 * scale`.
    """
    scale = pow2_scale(x.float().abs().amax(dim=-1, keepdim=True))  # (..., 1)
    return (x.float() / scale).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn), scale


def scaled_mm_blockwise(
    x: torch.Tensor, weight: torch.Tensor, scale_inv: torch.Tensor, out_dtype: torch.dtype
) -> torch.Tensor:
    """`x (M, K) @ W^T` as one FP8 GEMM with DeepSeek's scaling: activations quantised per token
    and 128-column block (1x128), weights per 128x128 block. CUDA (Hopper) only, K and N multiples
    of 128.

    cuBLASLt wants both scale tensors "outer-dim-major" (stride 1 along the first axis) and the
    weight scales' K-blocks padded to a multiple of 4; M is padded to a multiple of 4 as well.
    """
    m, k = x.shape
    n = weight.shape[0]
    blocks = k // 128
    xq, xs = quantize_vectors(x.reshape(m, blocks, 128))  # (M, K/128, 128), (M, K/128, 1)
    pad_m = -m % 4
    xq, xs = xq.reshape(m, k), xs.reshape(m, blocks)  # (M, K), (M, K/128)
    if pad_m:
        xq = torch.cat((xq, xq.new_zeros(pad_m, k)))
        xs = torch.cat((xs, xs.new_ones(pad_m, blocks)))
    l4 = blocks + (-blocks % 4)
    ws = scale_inv.new_ones(n // 128, l4)
    ws[:, :blocks] = scale_inv  # (N/128, L4)
    out = torch._scaled_mm(
        xq, weight.t(), scale_a=xs.t().contiguous().t(), scale_b=ws.t(), out_dtype=out_dtype
    )  # (M + pad, N)
    return out[:m]


class FP8Linear(nn.Module):
    """`y = x W^T` with `W` kept in FP8 e4m3 and one float32 scale per weight block.

    On CUDA with 128x128 blocks and both widths multiples of 128, one block-scaled FP8 GEMM
    (`scaled_mm_blockwise`, activations quantised per 1x128 as DeepSeek's reference does; checked
    on an H200 at ~3e-3 relative error vs dequantise + matmul, i.e. bf16 output rounding).
    Elsewhere (the CPU, tiny test shapes) it dequantises the weight and runs a matmul in the
    activation dtype, which is exact up to that dtype's rounding.
    """

    def __init__(self, in_features: int, out_features: int, block: tuple[int, int] = (128, 128)):
        super().__init__()
        self.in_features, self.out_features, self.block = in_features, out_features, tuple(block)
        self.weight = nn.Parameter(
            torch.empty(out_features, in_features, dtype=torch.float8_e4m3fn), requires_grad=False
        )
        scale_shape = block_scale_shape((out_features, in_features), self.block)
        self.weight_scale_inv = nn.Parameter(
            torch.empty(scale_shape, dtype=torch.float32), requires_grad=False
        )

    def dense_weight(self, dtype: torch.dtype) -> torch.Tensor:
        """The dequantised weight `(out, in)` in `dtype`."""
        return dequantize_blocks(self.weight, self.weight_scale_inv, self.block, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._gemm_ok(x):
            flat = x.reshape(-1, self.in_features)  # (N, in)
            out = scaled_mm_blockwise(flat, self.weight, self.weight_scale_inv, x.dtype)  # (N, out)
            return out.reshape(*x.shape[:-1], self.out_features)  # (..., out)
        return nn.functional.linear(x, self.dense_weight(x.dtype))

    def _gemm_ok(self, x: torch.Tensor) -> bool:
        return (
            x.is_cuda
            and self.block == (128, 128)
            and self.in_features % 128 == 0
            and self.out_features % 128 == 0
            and x.dtype in (torch.bfloat16, torch.float16)
        )

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, block={self.block}"
        )


def dense_weight(linear: nn.Module, dtype: torch.dtype) -> torch.Tensor:
    """Weight `(out, in)` of an `nn.Linear` or `FP8Linear` in `dtype`."""
    if isinstance(linear, FP8Linear):
        return linear.dense_weight(dtype)
    return linear.weight.to(dtype)
