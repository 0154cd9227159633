"""Shared helpers for the engine tests."""

from __future__ import annotations

import torch

from model.transformer import DeepseekV32


def prompt(length: int, seed: int = 0) -> list[int]:
    return torch.randint(0, 400, (length,), generator=torch.Generator().manual_seed(seed)).tolist()


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b|."""
    return float((a.float() - b.float()).abs().max() / b.float().abs().max())


@torch.no_grad()
def reference_logits(net: DeepseekV32, tokens: list[int]) -> torch.Tensor:
    """The reference path's logits `(T, vocab)` for one sequence (one full forward)."""
    return net(torch.tensor([tokens]))[0]
