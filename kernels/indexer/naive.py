"""Plain-PyTorch lightning indexer: full (T, N) score matrix, causal mask, torch.topk."""

from __future__ import annotations

import torch

from ..topk.naive import radix_topk


def index_scores(
    q: torch.Tensor, k: torch.Tensor, weights: torch.Tensor, k_scale: torch.Tensor | None = None
) -> torch.Tensor:
    """(T, N) float32 scores: k_scale[j] * sum_h weights[t, h] * relu(q[t, h] . k[j])."""
    logits = torch.einsum("thd,nd->thn", q.float(), k.float())  # (T, Hi, N)
    scores = torch.einsum("th,thn->tn", weights.float(), logits.relu())  # (T, N)
    return scores if k_scale is None else scores * k_scale.float()[None, :]


def lightning_indexer(
    q: torch.Tensor,
    k: torch.Tensor,
    weights: torch.Tensor,
    topk: int,
    q_pos: torch.Tensor,
    k_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reference for kernels.lightning_indexer: (T, topk) int32, -1 padded."""
    scores = index_scores(q, k, weights, k_scale)  # (T, N)
    lengths = (q_pos + 1).clamp(0, k.shape[0])  # (T,)
    return radix_topk(scores, lengths, topk)


def paged_keys(
    cache: torch.Tensor, block_table: torch.Tensor, seq_len: int, b: int
) -> torch.Tensor:
    """Sequence b's first seq_len entries of a paged cache (num_blocks, block_size, ...), in order."""
    page = cache.shape[1]
    pos = torch.arange(seq_len, device=cache.device)
    return cache[block_table[b, pos // page].long(), pos % page]  # (seq_len, ...)


def lightning_indexer_paged(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    weights: torch.Tensor,
    topk: int,
    block_table: torch.Tensor,
    seq_lens: torch.Tensor,
    k_scale_cache: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reference for kernels.lightning_indexer_paged: (B, topk) int32 positions, -1 padded."""
    rows = []
    for b in range(q.shape[0]):
        n = int(seq_lens[b])
        k = paged_keys(k_cache, block_table, n, b)  # (n, Di)
        ks = None if k_scale_cache is None else paged_keys(k_scale_cache, block_table, n, b)  # (n,)
        q_pos = torch.tensor([n - 1], dtype=torch.int64, device=q.device)
        rows.append(lightning_indexer(q[b : b + 1], k, weights[b : b + 1], topk, q_pos, ks))
    return torch.cat(rows)  # (B, topk)
