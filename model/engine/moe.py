"""Routed experts without a Python loop over experts.

The experts' weights are stacked once, `gate_up (E, 2I, D)` and `down (E, D, I)`, and the expert
modules' parameters are re-pointed at views of the stacks (no second copy; the reference path
reads the same storage). Per call the (token, expert) pairs are sorted by expert and run as one
grouped GEMM per projection:
- `torch._grouped_mm` on CUDA in bf16 (Hopper's grouped GEMM);
- elsewhere a batched fallback: for a few pairs (decode) the chosen experts' weights are gathered
  and multiplied pair by pair in one `bmm`; for many pairs (prefill) the sorted rows are padded to
  `(E, max_count, D)` and multiplied in one `bmm` per projection.
FP8 experts (`keep_fp8`) keep the reference loop: stacking them dequantised would double their memory.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from model.layers import MoE

log = logging.getLogger(__name__)


def _grouped_mm_ok(x: torch.Tensor) -> bool:
    return x.is_cuda and x.dtype == torch.bfloat16 and hasattr(torch, "_grouped_mm")


class GroupedExperts:
    """A stacked view of one MoE layer's routed experts."""

    def __init__(self, moe: MoE):
        self.moe = moe
        experts = list(moe.experts)
        self.stacked = all(
            type(e.gate_proj) is nn.Linear and type(e.down_proj) is nn.Linear for e in experts
        )
        if not self.stacked:
            return
        self.inter = experts[0].gate_proj.weight.shape[0]
        with torch.no_grad():
            self.gate_up = torch.stack(
                [torch.cat((e.gate_proj.weight, e.up_proj.weight)) for e in experts]
            )  # (E, 2I, D)
            self.down = torch.stack([e.down_proj.weight for e in experts])  # (E, D, I)
        for i, e in enumerate(experts):
            e.gate_proj.weight.data = self.gate_up[i, : self.inter]
            e.up_proj.weight.data = self.gate_up[i, self.inter :]
            e.down_proj.weight.data = self.down[i]
        self.use_grouped_mm = True

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
        if self.use_grouped_mm and _grouped_mm_ok(x):
            # scatter_add, not bincount: bincount sizes its output on the host (a sync, and no
            # CUDA-graph capture)
            counts = torch.zeros(self.gate_up.shape[0], dtype=torch.int64, device=x.device)
            counts.scatter_add_(0, flat, torch.ones_like(flat))
            offs = torch.cumsum(counts, 0).to(torch.int32)  # (E,) end of each expert's rows
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
