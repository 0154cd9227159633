"""Plain-PyTorch sparse MLA: gather the selected rows, softmax in float32, weighted sum.

Obviously right and slow: it materialises the gathered (T, topk, D) rows. The Triton
kernels are tested against these functions.
"""

from __future__ import annotations

import torch


def sparse_mla(
    q: torch.Tensor, kv: torch.Tensor, indices: torch.Tensor, sm_scale: float, dv: int = 512
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference for kernels.sparse_mla: q (T, H, D), kv (N, D), indices (T, topk) -> out (T, H, dv), lse (T, H)."""
    N = kv.shape[0]
    valid = (indices >= 0) & (indices < N)  # (T, K)
    rows = kv.float()[indices.long().clamp(0, N - 1)]  # (T, K, D)
    s = torch.einsum("thd,tkd->thk", q.float(), rows) * sm_scale  # (T, H, K)
    s = s.masked_fill(~valid[:, None, :], float("-inf"))
    lse = torch.logsumexp(s, dim=-1)  # (T, H); -inf where nothing is valid
    p = torch.exp(s - lse[..., None]).nan_to_num(0.0)  # (T, H, K); rows with no valid key give 0
    out = torch.einsum("thk,tkd->thd", p, rows[..., :dv])  # (T, H, dv)
    return out.to(q.dtype), lse


def paged_to_dense(
    kv_cache: torch.Tensor, block_table: torch.Tensor, seq_len: int, b: int
) -> torch.Tensor:
    """Sequence b's first seq_len cached rows, in position order: (seq_len, D)."""
    page = kv_cache.shape[1]
    pos = torch.arange(seq_len, device=kv_cache.device)
    return kv_cache[block_table[b, pos // page].long(), pos % page]  # (seq_len, D)


def sparse_mla_decode(
    q: torch.Tensor,
    kv_cache: torch.Tensor,
    block_table: torch.Tensor,
    seq_lens: torch.Tensor,
    indices: torch.Tensor,
    sm_scale: float,
    dv: int = 512,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference for kernels.sparse_mla_decode: rebuild each sequence's rows, then sparse_mla per sequence."""
    squeeze = q.dim() == 3
    if squeeze:
        q, indices = q[:, None], indices[:, None]  # (B, 1, H, D), (B, 1, topk)
    outs, lses = [], []
    for b in range(q.shape[0]):
        kv = paged_to_dense(kv_cache, block_table, int(seq_lens[b]), b)  # (L, D)
        o, l = sparse_mla(q[b], kv, indices[b], sm_scale, dv)
        outs.append(o)
        lses.append(l)
    out, lse = torch.stack(outs), torch.stack(lses)  # (B, S, H, dv), (B, S, H)
    return (out[:, 0], lse[:, 0]) if squeeze else (out, lse)
