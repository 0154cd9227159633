"""Routed experts without a Python loop over experts.

The experts' weights are stacked once, `gate_up (E, 2I, D)` and `down (E, D, I)` (FP8 experts:
the e4m3 weights and, beside them, their block scales `(E, 2I/b, D/b)` and `(E, D/b, I/b)`), and
the expert modules' parameters are re-pointed at views of the stacks, expert by expert (no second
copy; the reference path reads the same storage). Per call the (token, expert) pairs are sorted by
expert and run as one grouped GEMM per projection:
- bf16 experts: with the Triton backend, up to `DECODE_PAIRS` pairs (decode) run
  `kernels.grouped_gemm` (the FP8 kernel without scales); otherwise `torch._grouped_mm` on CUDA
  (Hopper's grouped GEMM);
- FP8 experts with the Triton backend on a GPU with FP8 tensor cores (compute capability >= 8.9):
  `kernels.fp8_grouped_gemm`, activations quantised per (row, 128 columns) to e4m3 with
  power-of-two scales (`kernels.quantize_rows`, SwiGLU fused into the down projection's
  quantisation), weights per 128 x 128 block: DeepSeek's scheme, as `FP8Linear` runs it on CUDA;
- elsewhere a batched fallback: for a few pairs (decode; FP8 also under CUDA-graph capture) the
  chosen experts' weights are gathered (FP8: and dequantised, in chunks of pairs that bound the
  temporary; nothing syncs) and multiplied pair by pair in one `bmm`; for many pairs (prefill) the sorted rows are padded to `(E, max_count, D)` and
  multiplied in one `bmm` per projection (FP8: per chunk of the experts that have rows, each chunk
  dequantised at once, at most `DEQUANT_CHUNK` elements).
Experts that cannot be stacked (mixed kinds, FP8 blocks that do not tile the widths) run the
reference `MoE.forward`, which loops over experts.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from model.fp8 import FP8Linear
from model.layers import MoE

log = logging.getLogger(__name__)

DEQUANT_CHUNK = 1 << 27  # FP8 fallback: weight elements dequantised at once at most
# bf16 experts: up to this many (token, expert) pairs (decode) take `kernels.grouped_gemm`, which
# reads the chosen experts' weights near the copy bandwidth; more take `torch._grouped_mm`.
DECODE_PAIRS = 64


def _grouped_mm_ok(x: torch.Tensor) -> bool:
    return x.is_cuda and x.dtype == torch.bfloat16 and hasattr(torch, "_grouped_mm")


def _stack(parts: list[list[torch.Tensor]]) -> torch.Tensor:
    """Copy each expert's tensors, concatenated along rows, into one `(E, rows, cols)` stack and
    re-point them at views of it, one expert at a time (each old tensor can go once copied)."""
    first = parts[0]
    stack = first[0].new_empty((len(parts), sum(p.shape[0] for p in first), first[0].shape[1]))
    for i, params in enumerate(parts):
        row = 0
        for p in params:
            view = stack[i, row : row + p.shape[0]]
            view.copy_(p.data)
            p.data = view
            row += p.shape[0]
    return stack


def _dequantize(w: torch.Tensor, scale: torch.Tensor, block: tuple[int, int], dtype: torch.dtype):
    """FP8 stacks `w (c, R, C)` with block scales `(c, R/b0, C/b1)` -> `(c, R, C)` in `dtype`;
    float32 products as `model.fp8.dequantize_blocks`, so it equals the reference bit for bit."""
    c, r, k = w.shape
    tiles = w.view(c, r // block[0], block[0], k // block[1], block[1]).to(torch.float32)
    return tiles.mul_(scale[:, :, None, :, None]).view(c, r, k).to(dtype)


def _fp8_stackable(experts: list[nn.Module]) -> bool:
    """FP8 experts stack when every projection is FP8Linear with one block that tiles D and I."""
    projs = [p for e in experts for p in (e.gate_proj, e.up_proj, e.down_proj)]
    if not all(type(p) is FP8Linear for p in projs):
        return False
    block = projs[0].block
    dim, inter = experts[0].gate_proj.in_features, experts[0].gate_proj.out_features
    return all(p.block == block for p in projs) and all(
        n % b == 0 for n in (dim, inter) for b in block
    )


def fp8_kernel_ok(device: torch.device) -> bool:
    """FP8 tensor cores: Ada / Hopper and newer (compute capability 8.9+)."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 9)


class GroupedExperts:
    """A stacked view of one MoE layer's routed experts.

    `use_kernel` (FP8 experts only) runs `kernels.fp8_grouped_gemm`. It is on when `triton` (the
    engine's backend is the Triton one) and the weights sit on a GPU with FP8 tensor cores: the
    kernel reads one byte per weight where the dequantising fallback moves about seven, and a bf16
    grouped GEMM would need a second, dequantised copy of the experts (kernels/BENCHMARKS.md).
    """

    def __init__(self, moe: MoE, triton: bool = False):
        self.moe = moe
        experts = list(moe.experts)
        self.fp8 = _fp8_stackable(experts)
        self.stacked = self.fp8 or all(
            type(p) is nn.Linear for e in experts for p in (e.gate_proj, e.up_proj, e.down_proj)
        )
        self.use_grouped_mm = self.use_kernel = self.decode_kernel = False
        if not self.stacked:
            return
        self.inter = experts[0].gate_proj.weight.shape[0]
        with torch.no_grad():
            self.gate_up = _stack(
                [[e.gate_proj.weight, e.up_proj.weight] for e in experts]
            )  # (E, 2I, D)
            self.down = _stack([[e.down_proj.weight] for e in experts])  # (E, D, I)
            if self.fp8:
                self.block = experts[0].gate_proj.block
                self.gate_up_scale = _stack(
                    [[e.gate_proj.weight_scale_inv, e.up_proj.weight_scale_inv] for e in experts]
                )  # (E, 2I/b0, D/b1)
                self.down_scale = _stack(
                    [[e.down_proj.weight_scale_inv] for e in experts]
                )  # (E, D/b0, I/b1)
        if self.fp8:
            b = self.block[0]
            self.use_kernel = (
                triton
                and self.block[1] == b
                and b >= 16
                and b & (b - 1) == 0
                and fp8_kernel_ok(self.gate_up.device)
            )
        else:
            self.use_grouped_mm = True
            self.decode_kernel = triton and self.gate_up.device.type == "cuda"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """`x (N, D)` -> routed experts plus shared expert `(N, D)`."""
        if not self.stacked:
            return self.moe(x)
        ids, weights = self.moe.gate(x)  # (N, k), (N, k) float32
        _n, k = ids.shape
        flat = ids.reshape(-1)  # (N*k,)
        order = torch.argsort(flat, stable=True)  # pairs sorted by expert
        expert = flat[order]  # (N*k,)
        token = order // k  # (N*k,)
        xs = x[token]  # (N*k, D)
        if self.use_kernel:
            y = self._fp8_kernel(xs, self._ends(flat))
        elif self.fp8:
            y = self._fp8_batched(xs, expert)
        elif self.decode_kernel and xs.shape[0] <= DECODE_PAIRS and x.dtype == torch.bfloat16:
            y = self._bf16_kernel(xs, self._ends(flat))
        elif self.use_grouped_mm and _grouped_mm_ok(x):
            offs = self._ends(flat)
            try:
                h = torch._grouped_mm(xs, self.gate_up.transpose(1, 2), offs=offs)  # (N*k, 2I)
                act = F.silu(h[:, : self.inter]) * h[:, self.inter :]
                y = torch._grouped_mm(act, self.down.transpose(1, 2), offs=offs)  # (N*k, D)
            except (
                RuntimeError
            ) as exc:  # this GPU / torch build has no grouped GEMM for these shapes
                log.warning("torch._grouped_mm unavailable (%s); using the batched fallback", exc)
                self.use_grouped_mm = False
                y = self._batched(xs, expert)
        else:
            y = self._batched(xs, expert)
        y = y * weights.reshape(-1)[order, None].to(x.dtype)
        out = torch.zeros_like(x).index_add_(0, token, y)  # (N, D)
        return out + self.moe.shared_experts(x)

    def _ends(self, flat: torch.Tensor) -> torch.Tensor:
        """`(E,)` int32 end of each expert's rows among the sorted pairs. scatter_add, not
        bincount: bincount sizes its output on the host (a sync, and no CUDA-graph capture)."""
        counts = torch.zeros(self.gate_up.shape[0], dtype=torch.int64, device=flat.device)
        counts.scatter_add_(0, flat, torch.ones_like(flat))
        return torch.cumsum(counts, 0).to(torch.int32)

    def _bf16_kernel(self, xs: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
        """Both projections as bf16 grouped GEMMs of the Triton kernel (decode-sized groups)."""
        import kernels

        h = kernels.grouped_gemm(xs.contiguous(), self.gate_up, ends)  # (P, 2I)
        act = F.silu(h[:, : self.inter]) * h[:, self.inter :]
        return kernels.grouped_gemm(act.contiguous(), self.down, ends)  # (P, D)

    def _fp8_kernel(self, xs: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
        """Both projections as block-scaled FP8 grouped GEMMs; nothing is read back to the host."""
        import kernels

        b = self.block[0]
        xq, x_scale = kernels.quantize_rows(xs.contiguous(), b)  # (P, D) e4m3, (P, D/b)
        h = kernels.fp8_grouped_gemm(xq, x_scale, self.gate_up, self.gate_up_scale, ends)
        aq, a_scale = kernels.quantize_rows(h, b, swiglu=True)  # (P, I) e4m3, (P, I/b)
        y = kernels.fp8_grouped_gemm(aq, a_scale, self.down, self.down_scale, ends)  # (P, D)
        return y.to(xs.dtype)

    def _fp8_batched(self, xs: torch.Tensor, expert: torch.Tensor) -> torch.Tensor:
        """The FP8 fallback: dequantise only the experts in use, a bounded chunk at a time."""
        p, dim = xs.shape
        e_count, rows2, _ = self.gate_up.shape
        per = max(1, DEQUANT_CHUNK // (rows2 * dim))  # experts dequantised at once
        # Decode: gather each pair's expert, in chunks of a fixed size, so nothing syncs (a CUDA
        # graph being captured takes this path whatever the batch).
        if p <= e_count or (xs.is_cuda and torch.cuda.is_current_stream_capturing()):
            outs = []
            for p0 in range(0, p, per):
                e = expert[p0 : p0 + per]  # (c,)
                gu = _dequantize(self.gate_up[e], self.gate_up_scale[e], self.block, xs.dtype)
                h = torch.bmm(gu, xs[p0 : p0 + per, :, None])[:, :, 0]  # (c, 2I)
                act = F.silu(h[:, : self.inter]) * h[:, self.inter :]
                dn = _dequantize(self.down[e], self.down_scale[e], self.block, xs.dtype)
                outs.append(torch.bmm(dn, act[:, :, None])[:, :, 0])  # (c, D)
            return torch.cat(outs)
        counts = torch.bincount(expert, minlength=e_count)  # (E,)
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.arange(p, device=xs.device) - starts[expert]  # rank within its expert
        used = counts.nonzero()[:, 0]  # (U,) ascending, so each chunk's rows are contiguous
        y = xs.new_empty(p, dim)
        for c0 in range(0, used.shape[0], per):
            ids = used[c0 : c0 + per]  # (c,)
            r0, r1 = int(starts[ids[0]]), int(starts[ids[-1]] + counts[ids[-1]])
            local = torch.searchsorted(ids, expert[r0:r1])  # (r,) index within the chunk
            buf = xs.new_zeros(ids.shape[0], int(counts[ids].max()), dim)
            buf[local, slot[r0:r1]] = xs[r0:r1]  # (c, cap, D)
            gu = _dequantize(self.gate_up[ids], self.gate_up_scale[ids], self.block, xs.dtype)
            h = torch.bmm(buf, gu.transpose(1, 2))  # (c, cap, 2I)
            act = F.silu(h[..., : self.inter]) * h[..., self.inter :]
            dn = _dequantize(self.down[ids], self.down_scale[ids], self.block, xs.dtype)
            y[r0:r1] = torch.bmm(act, dn.transpose(1, 2))[local, slot[r0:r1]]  # (r, D)
        return y

    def _batched(self, xs: torch.Tensor, expert: torch.Tensor) -> torch.Tensor:
        """The fallback: one bmm per projection, over gathered weights or padded groups."""
        e_count = self.gate_up.shape[0]
        if xs.shape[0] <= e_count:  # decode: read only the chosen experts' weights
            h = torch.bmm(self.gate_up[expert], xs[:, :, None])[:, :, 0]  # (P, 2I)
            act = F.silu(h[:, : self.inter]) * h[:, self.inter :]
            return torch.bmm(self.down[expert], act[:, :, None])[:, :, 0]  # (P, D)
        counts = torch.bincount(expert, minlength=e_count)  # (E,)
        starts = torch.cumsum(counts, 0) - counts
        slot = (
            torch.arange(xs.shape[0], device=xs.device) - starts[expert]
        )  # rank within its expert
        cap = int(counts.max())
        buf = xs.new_zeros(e_count, cap, xs.shape[1])
        buf[expert, slot] = xs  # (E, cap, D)
        h = torch.bmm(buf, self.gate_up.transpose(1, 2))  # (E, cap, 2I)
        act = F.silu(h[..., : self.inter]) * h[..., self.inter :]
        y = torch.bmm(act, self.down.transpose(1, 2))  # (E, cap, D)
        return y[expert, slot]  # (P, D)
