"""The lightning indexer of DeepSeek Sparse Attention.

For query t and key s (s <= t):  I(t, s) = sum_h w(t, h) * ReLU(q(t, h) . k(s)) * D^-1/2 * H^-1/2
with `H = index_n_heads`, `D = index_head_dim`, queries from the normalised query latent (`wq_b`),
one key per token shared by all heads (`wk` then LayerNorm) and per-head weights from the hidden
state (`weights_proj`). Each query keeps the `index_topk` best keys; the main attention sees only
those. Queries and keys carry half-split rotary on their first `qk_rope_head_dim` dimensions.

FP8 scoring follows DeepSeek's reference: rotate q and k by a Hadamard matrix (it spreads outliers
over all dimensions, and leaves exact dot products unchanged), quantise every vector to e4m3 with a
power-of-two scale, take dot products of the FP8 values in float32 and fold the scales back in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.config import ModelConfig
from model.fp8 import quantize_vectors
from model.layers import linear
from model.rope import rotate_half_split


def hadamard(dim: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Orthonormal Sylvester-Hadamard matrix `(dim, dim)` float32; `dim` a power of two."""
    if dim & (dim - 1):
        raise ValueError(f"Hadamard rotation needs a power-of-two width, got {dim}")
    h = torch.ones(1, 1, device=device)
    while h.shape[0] < dim:
        h = torch.cat((torch.cat((h, h), 1), torch.cat((h, -h), 1)), 0)
    return h * dim**-0.5


def causal_key_mask(start: int, t: int, s: int, device: torch.device) -> torch.Tensor:
    """`(T, S)` bool, True where key s is visible to query at absolute position start + t."""
    q_pos = torch.arange(start, start + t, device=device)[:, None]  # (T, 1)
    return torch.arange(s, device=device)[None, :] <= q_pos  # (T, S)


def index_scores(q: torch.Tensor, k: torch.Tensor, w: torch.Tensor, fp8: bool) -> torch.Tensor:
    """Indexer scores `(B, T, S)` float32 before masking.

    q `(B, T, H, D)`, k `(B, S, D)`, w `(B, T, H)` float32 already multiplied by `H^-1/2`.
    """
    d = q.shape[-1]
    if not fp8:
        logits = torch.einsum("bthd,bsd->bths", q.float(), k.float()) * d**-0.5  # (B, T, H, S)
        return torch.einsum("bth,bths->bts", w, F.relu(logits))
    rot = hadamard(d, q.device)
    q8, q_scale = quantize_vectors(q.float() @ rot)  # (B, T, H, D), (B, T, H, 1)
    k8, k_scale = quantize_vectors(k.float() @ rot)  # (B, S, D), (B, S, 1)
    logits = torch.einsum("bthd,bsd->bths", q8.float(), k8.float())  # (B, T, H, S)
    # The scales are positive, so folding them in after the ReLU is exact.
    head_w = w * q_scale.squeeze(-1) * d**-0.5  # (B, T, H)
    return torch.einsum("bth,bths->bts", head_w, F.relu(logits)) * k_scale.squeeze(-1)[:, None, :]


def select_topk(scores: torch.Tensor, visible: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the `k` best visible keys per query: `(B, T, S)` bool mask of the chosen keys.

    Rows with fewer than k visible keys keep all of them (top-k over -inf would pick invisible keys,
    which the AND with `visible` removes again).
    """
    masked = scores.masked_fill(~visible, float("-inf"))  # (B, T, S)
    idx = masked.topk(min(k, scores.shape[-1]), dim=-1).indices  # (B, T, K)
    chosen = torch.zeros_like(visible).scatter_(-1, idx, True)  # (B, T, S)
    return chosen & visible


def topk_overlap(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over queries of |A & B| / |A| for two selection masks `(B, T, S)` (rows with |A|=0 skipped)."""
    inter = (a & b).sum(-1).float()
    size = a.sum(-1).float()
    rows = size > 0
    return float((inter[rows] / size[rows]).mean()) if rows.any() else 1.0


class Indexer(nn.Module):
    """Scores keys for each query and returns which ones the sparse attention may read."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.wq_b = linear(cfg.q_lora_rank, cfg.index_n_heads * cfg.index_head_dim)
        self.wk = linear(cfg.hidden_size, cfg.index_head_dim)
        self.k_norm = nn.LayerNorm(cfg.index_head_dim, eps=1e-6)
        self.weights_proj = linear(cfg.hidden_size, cfg.index_n_heads)  # kept float32 on load

    def keys(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Indexer keys `(B, T, D)` for hidden states `x (B, T, hidden)`."""
        r = self.cfg.qk_rope_head_dim
        k = self.k_norm(self.wk(x))  # (B, T, D)
        return torch.cat((rotate_half_split(k[..., :r], cos, sin), k[..., r:]), dim=-1)  # (B, T, D)

    def forward(
        self,
        x: torch.Tensor,
        q_latent: torch.Tensor,
        keys: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        visible: torch.Tensor,
        fp8: bool,
    ) -> torch.Tensor:
        """Selection mask `(B, T, S)` over all cached keys `keys (B, S, D)`.

        x `(B, T, hidden)`, q_latent `(B, T, q_lora_rank)`, visible `(T, S)` causal mask.
        """
        cfg = self.cfg
        b, t, _ = x.shape
        r = cfg.qk_rope_head_dim
        q = self.wq_b(q_latent).view(b, t, cfg.index_n_heads, cfg.index_head_dim)  # (B, T, H, D)
        q = torch.cat((rotate_half_split(q[..., :r], cos, sin), q[..., r:]), dim=-1)  # (B, T, H, D)
        w = (
            F.linear(x.float(), self.weights_proj.weight.float()) * cfg.index_n_heads**-0.5
        )  # (B, T, H)
        scores = index_scores(q, keys, w, fp8)  # (B, T, S)
        return select_topk(scores, visible[None].expand(b, -1, -1), cfg.index_topk)
