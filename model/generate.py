"""Greedy generation over a preallocated cache: `prefill` once, then `decode_step` per token."""

from __future__ import annotations

import torch

from model.attention import LayerCache
from model.transformer import DeepseekV32


@torch.no_grad()
def prefill(model: DeepseekV32, ids: torch.Tensor, cache: list[LayerCache]) -> torch.Tensor:
    """Run the prompt `ids (B, T)` into an empty cache; logits of its last position `(B, vocab)`."""
    return model(ids, start=0, cache=cache)[:, -1]


@torch.no_grad()
def decode_step(
    model: DeepseekV32, token: torch.Tensor, pos: int, cache: list[LayerCache]
) -> torch.Tensor:
    """Feed one token per sequence `(B,)` at position `pos`; logits `(B, vocab)` for the next one."""
    return model(token[:, None], start=pos, cache=cache)[:, -1]  # (B, 1) in, (B, vocab) out


@torch.no_grad()
def generate(
    model: DeepseekV32, ids: torch.Tensor, max_new_tokens: int, eos_id: int | None = None
) -> torch.Tensor:
    """Greedy continuation: returns `(B, T + n)` with n <= max_new_tokens (stops when all hit eos)."""
    b, t = ids.shape
    cache = model.new_cache(b, t + max_new_tokens)
    logits = prefill(model, ids, cache)
    out = [ids]
    done = torch.zeros(b, dtype=torch.bool, device=ids.device)
    for step in range(max_new_tokens):
        token = logits.argmax(-1)  # (B,)
        out.append(token[:, None])
        if eos_id is not None:
            done |= token == eos_id
            if bool(done.all()):
                break
        if step + 1 < max_new_tokens:
            logits = decode_step(model, token, t + step, cache)
    return torch.cat(out, dim=1)
