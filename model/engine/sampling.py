"""Token sampling on the logits' device: greedy, temperature, nucleus (top-p), per-sequence seeds.

Random choice uses the exponential race (argmax of p / E with E ~ Exp(1), equivalent to
sampling from p), so a whole batch samples without a host round trip; each sequence draws its
noise from its own generator, so a seeded sequence gives the same tokens in any batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingParams:
    """How one sequence picks its tokens."""

    max_new_tokens: int = 256
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int | None = None
    stop_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


def make_generator(params: SamplingParams, device: torch.device) -> torch.Generator | None:
    """A generator for a sampled sequence (seeded when asked), None for greedy ones."""
    if params.temperature == 0:
        return None
    g = torch.Generator(device=device)
    if params.seed is not None:
        g.manual_seed(params.seed)
    else:
        g.seed()
    return g


def sample(
    logits: torch.Tensor, params: list[SamplingParams], generators: list[torch.Generator | None]
) -> torch.Tensor:
    """Next tokens `(B,)` int64 from logits `(B, vocab)`."""
    greedy = logits.argmax(-1)
    if all(p.temperature == 0 for p in params):
        return greedy
    dev = logits.device
    temps = torch.tensor([p.temperature or 1.0 for p in params], device=dev, dtype=torch.float32)
    top_p = torch.tensor([p.top_p for p in params], device=dev, dtype=torch.float32)
    probs = torch.softmax(logits.float() / temps[:, None], dim=-1)  # (B, V)
    sorted_p, order = probs.sort(dim=-1, descending=True)
    before = sorted_p.cumsum(-1) - sorted_p  # mass of the better tokens
    sorted_p = sorted_p.masked_fill(before >= top_p[:, None], 0.0)  # keeps at least the best token
    noise = torch.ones_like(sorted_p)
    for i, g in enumerate(generators):
        if g is not None:
            noise[i].exponential_(generator=g)
    choice = order.gather(1, (sorted_p / noise).argmax(-1, keepdim=True))[:, 0]  # (B,)
    is_greedy = torch.tensor([p.temperature == 0 for p in params], device=dev)
    return torch.where(is_greedy, greedy, choice)
