"""The DeepSeek-V3.2 decoder: embedding -> N x (MLA + MLP/MoE) -> norm -> lm_head.

Module names mirror the released checkpoint's tensor names (`model.layers.3.self_attn.q_a_proj.weight`,
`model.layers.3.mlp.experts.7.up_proj.weight`, ...), so loading is a one-to-one assignment.
"""

from __future__ import annotations

import torch
from torch import nn

from model.attention import MLA, LayerCache
from model.config import ModelConfig, RunOptions
from model.layers import MLP, MoE, RMSNorm, linear
from model.rope import cos_sin, inv_frequencies


class Block(nn.Module):
    """Pre-norm decoder layer: `x + attn(norm(x))`, then `x + mlp(norm(x))`."""

    def __init__(self, cfg: ModelConfig, layer: int, opts: RunOptions):
        super().__init__()
        self.self_attn = MLA(cfg, opts.attention, opts.indexer == "fp8")
        self.mlp = (
            MoE(cfg) if cfg.is_moe_layer(layer) else MLP(cfg.hidden_size, cfg.intermediate_size)
        )
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(
        self,
        x: torch.Tensor,
        start: int,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: LayerCache | None,
    ) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), start, cos, sin, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class Decoder(nn.Module):
    """Everything below the LM head (`model.*` in the checkpoint)."""

    def __init__(self, cfg: ModelConfig, opts: RunOptions):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Block(cfg, i, opts) for i in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class DeepseekV32(nn.Module):
    """Causal LM: `forward(ids (B, T), start=0, cache=None) -> logits (B, T, vocab)`.

    With a cache (`new_cache`), positions [start, start+T) are written into it and attention reads
    everything cached before them, so prefill then token-by-token decoding equals one full forward.
    """

    def __init__(self, cfg: ModelConfig, opts: RunOptions | None = None):
        super().__init__()
        self.cfg, self.opts = cfg, opts or RunOptions()
        self.model = Decoder(cfg, self.opts)
        self.lm_head = linear(cfg.hidden_size, cfg.vocab_size)
        inv_freq, magnitude = inv_frequencies(cfg.rope(), cfg.qk_rope_head_dim)
        # Explicit CPU device: the loader builds this module under torch.device("meta").
        self.register_buffer("inv_freq", inv_freq.to("cpu"), persistent=False)
        self.rope_magnitude = magnitude

    def new_cache(self, batch: int, max_len: int) -> list[LayerCache]:
        """Preallocated caches (one per layer) for `batch` sequences of up to `max_len` tokens."""
        ref = self.lm_head.weight
        dtype = (
            ref.dtype if ref.dtype.is_floating_point and ref.element_size() > 1 else torch.bfloat16
        )
        return [
            LayerCache(self.cfg, batch, max_len, ref.device, dtype)
            for _ in range(self.cfg.num_hidden_layers)
        ]

    def forward(
        self, input_ids: torch.Tensor, start: int = 0, cache: list[LayerCache] | None = None
    ) -> torch.Tensor:
        _b, t = input_ids.shape
        x = self.model.embed_tokens(input_ids)  # (B, T, hidden)
        positions = torch.arange(start, start + t, device=input_ids.device)
        cos, sin = cos_sin(self.inv_freq, self.rope_magnitude, positions)  # (T, 32) each
        for i, layer in enumerate(self.model.layers):
            x = layer(x, start, cos, sin, cache[i] if cache is not None else None)
        return self.lm_head(self.model.norm(x))  # (B, T, vocab)
