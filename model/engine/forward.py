"""One forward pass of the engine over a flat batch of tokens, using the loaded model's weights.

The tokens of a step are flattened to `(N,)` with their own positions and cache slots, so the
projections, norms and experts run once over all of them whatever sequences they belong to;
only attention looks at sequences: a prefill chunk is one sequence's `T` consecutive tokens, a
decode step is one token for each of `B` sequences.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from model.attention import MLA
from model.engine.backends import Backend, causal_indices
from model.engine.cache import PagedCache
from model.engine.moe import GroupedExperts
from model.fp8 import dense_weight, quantize_vectors
from model.layers import MoE
from model.rope import cos_sin, rotate_half_split, rotate_interleaved
from model.transformer import DeepseekV32


@dataclass
class Step:
    """Inputs of one forward call.

    ids, positions, slots: `(N,)` int64 (slot = block * block_size + offset in the caches).
    Prefill (`decode=False`): one sequence, `tables (max_blocks,)` int32, `start` its first position.
    Decode: one token per sequence, `tables (B, max_blocks)` int32, `lens (B,)` int32 = position + 1.
    `logit_rows`: which of the N rows need logits (None: all).
    """

    ids: torch.Tensor
    positions: torch.Tensor
    slots: torch.Tensor
    tables: torch.Tensor
    decode: bool
    start: int = 0
    lens: torch.Tensor | None = None
    logit_rows: torch.Tensor | None = None


class Runner:
    """Holds per-layer derived weights (absorbed `W_uk` / `W_uv`, stacked experts) and runs steps."""

    def __init__(self, net: DeepseekV32, cache: PagedCache, backend: Backend):
        self.net, self.cfg, self.cache, self.backend = net, net.cfg, cache, backend
        cfg = self.cfg
        dtype = net.model.embed_tokens.weight.dtype
        self.absorb = []
        self.experts: list[GroupedExperts | None] = []
        for layer in net.model.layers:
            attn = layer.self_attn
            w = dense_weight(attn.kv_b_proj, dtype)  # (H * (nope + v), 512)
            w = w.view(
                cfg.num_attention_heads, cfg.qk_nope_head_dim + cfg.v_head_dim, cfg.kv_lora_rank
            )
            self.absorb.append(
                (w[:, : cfg.qk_nope_head_dim], w[:, cfg.qk_nope_head_dim :])
            )  # (H, nope, 512), (H, v, 512)
            self.experts.append(
                GroupedExperts(layer.mlp, triton=backend.name == "triton")
                if isinstance(layer.mlp, MoE)
                else None
            )
        self.index_fp8 = cache.index_fp8

    @torch.no_grad()
    def __call__(self, step: Step) -> torch.Tensor:
        """Logits `(rows, vocab)` for `step.logit_rows` (all N rows when None)."""
        net = self.net
        x = net.model.embed_tokens(step.ids)[None]  # (1, N, hidden)
        cos, sin = cos_sin(net.inv_freq, net.rope_magnitude, step.positions)  # (N, rope/2) each
        for i, layer in enumerate(net.model.layers):
            x = x + self._attention(i, layer.self_attn, layer.input_layernorm(x), cos, sin, step)
            h = layer.post_attention_layernorm(x)
            experts = self.experts[i]
            x = x + (experts(h[0])[None] if experts is not None else layer.mlp(h))
        if step.logit_rows is not None:
            x = x[:, step.logit_rows]
        return net.lm_head(net.model.norm(x))[0]  # (rows, vocab)

    def _attention(
        self, layer: int, m: MLA, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, step: Step
    ) -> torch.Tensor:
        """MLA in absorbed form over the paged cache; x `(1, N, hidden)` -> `(1, N, hidden)`."""
        cfg = self.cfg
        n = x.shape[1]
        h, nope, rope, rank = (
            cfg.num_attention_heads,
            cfg.qk_nope_head_dim,
            cfg.qk_rope_head_dim,
            cfg.kv_lora_rank,
        )

        q_latent = m.q_a_layernorm(m.q_a_proj(x))  # (1, N, q_lora_rank)
        q = m.q_b_proj(q_latent).view(1, n, h, nope + rope)  # (1, N, H, 192)
        q_nope, q_pe = q[..., :nope], rotate_interleaved(q[..., nope:], cos, sin)
        kv = m.kv_a_proj_with_mqa(x)  # (1, N, 576)
        c = m.kv_a_layernorm(kv[..., :rank])  # (1, N, 512)
        k_pe = rotate_interleaved(kv[..., rank:], cos, sin)  # (1, N, 64)
        self.cache.write(
            layer, step.slots, torch.cat((c, k_pe), dim=-1)[0], m.indexer.keys(x, cos, sin)[0]
        )

        w_uk, w_uv = self.absorb[layer]
        q_lat = torch.einsum("bthd,hdc->bthc", q_nope, w_uk)  # (1, N, H, 512)
        qa = torch.cat((q_lat, q_pe.to(q_lat.dtype)), dim=-1)[0]  # (N, H, 576)
        topk = cfg.index_topk
        if step.decode:
            qi, w, scale = self._index_query(m, x, q_latent, cos, sin)
            idx = self.backend.select_decode(
                self.cache, layer, step.tables, step.lens, qi, w, scale, topk
            )
            o_lat = self.backend.attend_decode(
                self.cache, layer, step.tables, step.lens, qa, idx, m.scale, rank
            )
        else:
            if step.start + n <= topk:  # every query sees <= topk keys: DSA is dense attention here
                idx = causal_indices(step.start, n, topk, x.device)
            else:
                qi, w, scale = self._index_query(m, x, q_latent, cos, sin)
                idx = self.backend.select_prefill(
                    self.cache, layer, step.tables, step.start, qi, w, scale, topk
                )
            o_lat = self.backend.attend_prefill(
                self.cache, layer, step.tables, step.start, qa, idx, m.scale, rank
            )
        out = torch.einsum("thc,hvc->thv", o_lat, w_uv)  # (N, H, v)
        return m.o_proj(out.reshape(1, n, h * cfg.v_head_dim))  # (1, N, hidden)

    def _index_query(
        self, m: MLA, x: torch.Tensor, q_latent: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, float | None]:
        """Indexer queries `(N, Hi, Di)`, head weights `(N, Hi)` float32 and the logit scale.

        Exact: weights `w`, scale Di^-1/2 on the logits (as `model.indexer.index_scores`). FP8: the
        Hadamard-rotated query quantised per head, its scale and Di^-1/2 folded into the weights
        (positive, so they commute with the ReLU) and no logit scale.
        """
        cfg = self.cfg
        ix = m.indexer
        n = x.shape[1]
        r, hi, di = cfg.qk_rope_head_dim, cfg.index_n_heads, cfg.index_head_dim
        qi = ix.wq_b(q_latent).view(1, n, hi, di)  # (1, N, Hi, Di)
        qi = torch.cat((rotate_half_split(qi[..., :r], cos, sin), qi[..., r:]), dim=-1)[
            0
        ]  # (N, Hi, Di)
        w = F.linear(x.float(), ix.weights_proj.weight.float())[0] * hi**-0.5  # (N, Hi)
        if not self.index_fp8:
            return qi, w, di**-0.5
        q8, q_scale = quantize_vectors(qi.float() @ self.cache.rotation)  # (N, Hi, Di), (N, Hi, 1)
        return q8, w * q_scale.squeeze(-1) * di**-0.5, None
