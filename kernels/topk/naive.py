"""Plain-PyTorch row-wise top-k over a visible prefix of each row."""

from __future__ import annotations

import torch


def radix_topk(scores: torch.Tensor, lengths: torch.Tensor, topk: int) -> torch.Tensor:
    """Reference for kernels.radix_topk: (R, L) scores, (R,) lengths -> (R, topk) int32, -1 padded."""
    R, L = scores.shape
    cols = torch.arange(L, device=scores.device)
    visible = cols[None, :] < lengths.clamp(0, L)[:, None].long()  # (R, L)
    masked = scores.float().masked_fill(~visible, float("-inf"))
    k = min(topk, L)
    vals, idx = torch.topk(masked, k, dim=1)  # (R, k)
    idx = idx.to(torch.int32).masked_fill(vals == float("-inf"), -1)
    out = torch.full((R, topk), -1, dtype=torch.int32, device=scores.device)
    out[:, :k] = idx
    return out
