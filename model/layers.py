"""Small building blocks: RMSNorm, the SwiGLU MLP and the routed mixture of experts."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.config import ModelConfig


def linear(in_features: int, out_features: int) -> nn.Linear:
    """Bias-free projection; every DeepSeek-V3.2 linear layer is one."""
    return nn.Linear(in_features, out_features, bias=False)


class RMSNorm(nn.Module):
    """`x / rms(x) * weight`, normalised in float32 and cast back before the weight (as the references)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


class MLP(nn.Module):
    """SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`; dense layers, experts and shared experts."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.gate_proj = linear(dim, hidden)
        self.up_proj = linear(dim, hidden)
        self.down_proj = linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Router(nn.Module):
    """Sigmoid router with a selection-only bias and group-limited top-k (DeepSeek's `noaux_tc`)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        # Both stay float32 on load: tiny score differences change which experts are chosen.
        self.weight = nn.Parameter(
            torch.zeros(cfg.n_routed_experts, cfg.hidden_size, dtype=torch.float32)
        )
        self.register_buffer(
            "e_score_correction_bias", torch.zeros(cfg.n_routed_experts, dtype=torch.float32)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens `(N, D)` -> (expert ids `(N, k)`, weights `(N, k)` float32)."""
        cfg = self.cfg
        scores = F.linear(x.float(), self.weight.float()).sigmoid()  # (N, E)
        choice = scores + self.e_score_correction_bias  # the bias steers selection only
        n, e = choice.shape
        grouped = choice.view(n, cfg.n_group, e // cfg.n_group)  # (N, G, E/G)
        group_score = grouped.topk(min(2, e // cfg.n_group), dim=-1).values.sum(-1)  # (N, G)
        keep = group_score.topk(cfg.topk_group, dim=-1).indices  # (N, topk_group)
        group_mask = torch.zeros_like(group_score, dtype=torch.bool).scatter_(
            1, keep, True
        )  # (N, G)
        expert_mask = group_mask[:, :, None].expand_as(grouped).reshape(n, e)  # (N, E)
        ids = (
            choice.masked_fill(~expert_mask, float("-inf"))
            .topk(cfg.num_experts_per_tok, dim=-1)
            .indices
        )
        weights = scores.gather(1, ids)  # unbiased scores of the chosen experts
        if cfg.norm_topk_prob:
            weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
        return ids, weights * cfg.routed_scaling_factor


class MoE(nn.Module):
    """Routed experts plus always-on shared expert(s)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gate = Router(cfg)
        self.experts = nn.ModuleList(
            MLP(cfg.hidden_size, cfg.moe_intermediate_size) for _ in range(cfg.n_routed_experts)
        )
        self.shared_experts = MLP(cfg.hidden_size, cfg.moe_intermediate_size * cfg.n_shared_experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])  # (N, D)
        ids, weights = self.gate(flat)
        out = torch.zeros_like(flat)
        for e in ids.unique().tolist():
            token, slot = (ids == e).nonzero(as_tuple=True)
            y = self.experts[e](flat[token]) * weights[token, slot, None].to(flat.dtype)
            out.index_add_(0, token, y)
        return (out + self.shared_experts(flat)).view(shape)
