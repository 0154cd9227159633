"""YaRN rotary embedding and the two layouts DeepSeek-V3.2 applies it in.

Both attention paths rotate `qk_rope_head_dim` (64) dimensions with the same frequencies:
- MLA (main attention) pairs dimensions as neighbours `(x0, x1), (x2, x3), ...` ("interleaved").
- The lightning indexer pairs them as halves `(x0, x32), (x1, x33), ...` ("half-split") and
  rotates only the first 64 of its 128 dimensions.
"""

from __future__ import annotations

import math

import torch

from model.config import RopeConfig


def _correction_dim(rotations: float, dim: int, base: float, max_pos: int) -> float:
    """Dimension index whose wavelength completes `rotations` turns over `max_pos` positions."""
    return dim * math.log(max_pos / (rotations * 2 * math.pi)) / (2 * math.log(base))


def inv_frequencies(rope: RopeConfig, dim: int) -> tuple[torch.Tensor, float]:
    """Inverse frequencies `(dim // 2,)` float32 and the cos/sin magnitude factor.

    YaRN keeps high-frequency dimensions as trained (extrapolation), divides the low-frequency ones
    by `factor` (interpolation) and ramps linearly between the two correction dimensions.
    """
    exponents = torch.arange(0, dim, 2, dtype=torch.float32, device="cpu") / dim
    base_freq = 1.0 / (rope.theta**exponents)  # (dim/2,)
    if rope.rope_type == "default":
        return base_freq, 1.0
    if rope.rope_type != "yarn":
        raise ValueError(f"rope type {rope.rope_type!r} is not supported (default, yarn)")
    orig = rope.original_max_position_embeddings or 4096
    low = _correction_dim(rope.beta_fast, dim, rope.theta, orig)
    high = _correction_dim(rope.beta_slow, dim, rope.theta, orig)
    if rope.truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001  # a zero-width ramp would divide by zero
    ramp = ((torch.arange(dim // 2, dtype=torch.float32, device="cpu") - low) / (high - low)).clamp(
        0, 1
    )
    keep = 1.0 - ramp  # 1: extrapolate (as trained), 0: interpolate (divide by factor)
    freq = base_freq / rope.factor * (1.0 - keep) + base_freq * keep
    return freq, _magnitude(rope)


def _magnitude(rope: RopeConfig) -> float:
    """YaRN's cos/sin scale; 1.0 for the release (mscale == mscale_all_dim), whose correction goes
    into the softmax scale instead (`ModelConfig.softmax_scale`)."""
    if rope.attention_factor is not None:
        return rope.attention_factor

    def m(scale: float, k: float) -> float:
        return 1.0 if scale <= 1 else 0.1 * k * math.log(scale) + 1.0

    if rope.mscale and rope.mscale_all_dim:
        return m(rope.factor, rope.mscale) / m(rope.factor, rope.mscale_all_dim)
    return m(rope.factor, 1.0)


def cos_sin(
    inv_freq: torch.Tensor, magnitude: float, positions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin `(T, dim/2)` float32 for integer positions `(T,)`."""
    angles = (
        positions.to(torch.float32)[:, None] * inv_freq.to(positions.device)[None, :]
    )  # (T, dim/2)
    return angles.cos() * magnitude, angles.sin() * magnitude


def rotate_interleaved(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate neighbour pairs of `x (B, T, ..., dim)` in place layout (MLA's convention).

    The output keeps DeepSeek's layout (pair i at dims 2i, 2i+1). transformers writes the rotated
    pairs de-interleaved (evens then odds) instead; both give the same q.k dot products.
    """
    shape = x.shape
    pairs = x.float().reshape(*shape[:-1], shape[-1] // 2, 2)  # (B, T, ..., dim/2, 2)
    extra = pairs.dim() - 4  # head axes between T and the pair axis
    c = cos.reshape(1, cos.shape[0], *([1] * extra), cos.shape[1])  # (1, T, 1.., dim/2)
    s = sin.reshape(1, sin.shape[0], *([1] * extra), sin.shape[1])
    a, b = pairs[..., 0], pairs[..., 1]
    out = torch.stack((a * c - b * s, b * c + a * s), dim=-1)  # (B, T, ..., dim/2, 2)
    return out.reshape(shape).to(x.dtype)  # (B, T, ..., dim)


def rotate_half_split(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate `x (B, T, ..., dim)` pairing dim i with dim i + dim/2 (the indexer's convention)."""
    half = x.shape[-1] // 2
    xf = x.float()
    a, b = xf[..., :half], xf[..., half:]
    extra = x.dim() - 3
    c = cos.reshape(1, cos.shape[0], *([1] * extra), cos.shape[1])  # (1, T, 1.., dim/2)
    s = sin.reshape(1, sin.shape[0], *([1] * extra), sin.shape[1])
    return torch.cat((a * c - b * s, b * c + a * s), dim=-1).to(x.dtype)
