"""Multi-head latent attention (MLA) with DeepSeek Sparse Attention.

Per token the layer caches one latent row of 576 values: the normalised 512-dim KV latent `c` and
the 64-dim rotary key `k_pe` shared by all heads (plus the indexer's key, see `indexer.py`).

Expanded form (what transformers runs): `kv_b_proj` turns `c` into per-head keys (128 nope dims,
with `k_pe` appended) and values (128), then ordinary attention over 192-dim keys.

Absorbed form (what DSA and the kernels run): fold the key half of `kv_b_proj` into the query,
`q_lat(h) = W_uk(h)^T q_nope(h)` (512), so every head attends over the shared 576-dim rows
`[c, k_pe]` with values `c`; the value half `W_uv(h)` is applied after the weighted sum. Both forms
compute the same function of the same weights.
"""

from __future__ import annotations

import torch
from torch import nn

from model.config import ModelConfig
from model.fp8 import dense_weight
from model.indexer import Indexer, causal_key_mask
from model.layers import RMSNorm, linear
from model.rope import rotate_interleaved


class LayerCache:
    """Preallocated per-layer cache: latent rows `(B, S_max, kv_lora_rank + rope)` and indexer keys
    `(B, S_max, index_head_dim)`."""

    def __init__(
        self,
        cfg: ModelConfig,
        batch: int,
        max_len: int,
        device: torch.device | str,
        dtype: torch.dtype,
    ):
        self.latent = torch.zeros(
            batch, max_len, cfg.kv_lora_rank + cfg.qk_rope_head_dim, device=device, dtype=dtype
        )
        self.index_keys = torch.zeros(
            batch, max_len, cfg.index_head_dim, device=device, dtype=dtype
        )

    def write(
        self, start: int, latent: torch.Tensor, index_keys: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store rows at [start, start+T) and return everything cached up to there."""
        end = start + latent.shape[1]
        if end > self.latent.shape[1]:
            raise ValueError(
                f"cache holds {self.latent.shape[1]} positions, asked to write up to {end}"
            )
        self.latent[:, start:end] = latent
        self.index_keys[:, start:end] = index_keys
        return self.latent[:, :end], self.index_keys[:, :end]


class MLA(nn.Module):
    """Attention block; parameter names follow the released checkpoint (`self_attn.*`)."""

    def __init__(self, cfg: ModelConfig, form: str, indexer_fp8: bool):
        super().__init__()
        self.cfg, self.form, self.indexer_fp8 = cfg, form, indexer_fp8
        h = cfg.num_attention_heads
        self.q_a_proj = linear(cfg.hidden_size, cfg.q_lora_rank)
        self.q_a_layernorm = RMSNorm(cfg.q_lora_rank, eps=1e-6)
        self.q_b_proj = linear(cfg.q_lora_rank, h * cfg.qk_head_dim)
        self.kv_a_proj_with_mqa = linear(cfg.hidden_size, cfg.kv_lora_rank + cfg.qk_rope_head_dim)
        self.kv_a_layernorm = RMSNorm(cfg.kv_lora_rank, eps=1e-6)
        self.kv_b_proj = linear(cfg.kv_lora_rank, h * (cfg.qk_nope_head_dim + cfg.v_head_dim))
        self.o_proj = linear(h * cfg.v_head_dim, cfg.hidden_size)
        self.indexer = Indexer(cfg)
        self.scale = cfg.softmax_scale()

    def forward(
        self,
        x: torch.Tensor,
        start: int,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: LayerCache | None,
    ) -> torch.Tensor:
        """x `(B, T, hidden)` at absolute positions [start, start+T) -> `(B, T, hidden)`."""
        cfg = self.cfg
        b, t, _ = x.shape
        h, nope, rope = cfg.num_attention_heads, cfg.qk_nope_head_dim, cfg.qk_rope_head_dim

        q_latent = self.q_a_layernorm(self.q_a_proj(x))  # (B, T, q_lora_rank)
        q = self.q_b_proj(q_latent).view(b, t, h, nope + rope)  # (B, T, H, 192)
        q_nope, q_pe = q[..., :nope], rotate_interleaved(q[..., nope:], cos, sin)

        kv = self.kv_a_proj_with_mqa(x)  # (B, T, 512 + 64)
        c = self.kv_a_layernorm(kv[..., : cfg.kv_lora_rank])  # (B, T, 512)
        k_pe = rotate_interleaved(kv[..., cfg.kv_lora_rank :], cos, sin)  # (B, T, 64)
        latent = torch.cat((c, k_pe), dim=-1)  # (B, T, 576)
        index_keys = self.indexer.keys(x, cos, sin)  # (B, T, D_index)
        if cache is not None:
            latent, index_keys = cache.write(
                start, latent, index_keys
            )  # (B, S, 576), (B, S, D_index)

        visible = causal_key_mask(start, t, latent.shape[1], x.device)  # (T, S)
        chosen = self.indexer(
            x, q_latent, index_keys, cos, sin, visible, self.indexer_fp8
        )  # (B, T, S)
        attend = self._absorbed if self.form == "absorbed" else self._expanded
        out = attend(q_nope, q_pe, latent, chosen)  # (B, T, H, v_head_dim)
        return self.o_proj(out.reshape(b, t, h * cfg.v_head_dim))  # (B, T, hidden)

    def _kv_b(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """`kv_b_proj` split into key `(H, nope, 512)` and value `(H, v, 512)` halves."""
        cfg = self.cfg
        w = dense_weight(self.kv_b_proj, dtype)  # (H * (nope + v), 512)
        w = w.view(
            cfg.num_attention_heads, cfg.qk_nope_head_dim + cfg.v_head_dim, cfg.kv_lora_rank
        )  # (H, nope+v, 512)
        return w[:, : cfg.qk_nope_head_dim], w[:, cfg.qk_nope_head_dim :]

    def _softmax(self, scores: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
        """scores `(B, H, T, S)` float32, chosen `(B, T, S)` -> probabilities `(B, H, T, S)`."""
        scores = scores.masked_fill(~chosen[:, None], float("-inf"))
        return torch.softmax(scores, dim=-1)

    def _absorbed(
        self, q_nope: torch.Tensor, q_pe: torch.Tensor, latent: torch.Tensor, chosen: torch.Tensor
    ) -> torch.Tensor:
        w_uk, w_uv = self._kv_b(q_nope.dtype)
        c, k_pe = (
            latent[..., : self.cfg.kv_lora_rank],
            latent[..., self.cfg.kv_lora_rank :],
        )  # (B, S, 512), (B, S, 64)
        q_lat = torch.einsum("bthd,hdc->bthc", q_nope, w_uk)  # (B, T, H, 512)
        scores = (
            torch.einsum("bthc,bsc->bhts", q_lat, c) + torch.einsum("bthr,bsr->bhts", q_pe, k_pe)
        ).float() * self.scale  # (B, H, T, S)
        p = self._softmax(scores, chosen).to(c.dtype)
        o_lat = torch.einsum("bhts,bsc->bthc", p, c)  # (B, T, H, 512)
        return torch.einsum("bthc,hvc->bthv", o_lat, w_uv)  # (B, T, H, v)

    def _expanded(
        self, q_nope: torch.Tensor, q_pe: torch.Tensor, latent: torch.Tensor, chosen: torch.Tensor
    ) -> torch.Tensor:
        cfg = self.cfg
        b, s, _ = latent.shape
        kv = self.kv_b_proj(latent[..., : cfg.kv_lora_rank])  # (B, S, H * (nope + v))
        kv = kv.view(
            b, s, cfg.num_attention_heads, cfg.qk_nope_head_dim + cfg.v_head_dim
        )  # (B, S, H, nope+v)
        k_nope, v = kv[..., : cfg.qk_nope_head_dim], kv[..., cfg.qk_nope_head_dim :]
        k_pe = latent[:, :, None, cfg.kv_lora_rank :].expand(
            -1, -1, cfg.num_attention_heads, -1
        )  # (B, S, H, 64)
        k = torch.cat((k_nope, k_pe), dim=-1)  # (B, S, H, 192)
        qf = torch.cat((q_nope, q_pe), dim=-1)  # (B, T, H, 192)
        scores = torch.einsum("bthd,bshd->bhts", qf, k).float() * self.scale  # (B, H, T, S)
        p = self._softmax(scores, chosen).to(v.dtype)
        return torch.einsum("bhts,bshv->bthv", p, v)  # (B, T, H, v)
