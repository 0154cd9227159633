"""Godwit's local DeepSeek-V3.2 (DeepSeek Sparse Attention) model.

`import model` is cheap: torch, safetensors and pydantic are imported only when `load` is called.
`model.encoding` (prompt rendering and completion parsing) never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from model.errors import CheckpointError, ConfigError, EncodingError, ModelError, TokenizerError

if TYPE_CHECKING:
    import torch

__all__ = [
    "CheckpointError",
    "ConfigError",
    "EncodingError",
    "ModelError",
    "TokenizerError",
    "load",
]


def load(
    path: Any, device: Any = "cpu", dtype: torch.dtype | None = None, **options: Any
) -> torch.nn.Module:
    """Load a Hugging Face-layout DeepSeek-V3.2 checkpoint folder as a `torch.nn.Module`.

    The module maps input ids `(B, T)` to logits `(B, T, vocab)`. `dtype` defaults to bfloat16.
    Keyword `options` are fields of `model.config.RunOptions` (e.g. `attention="expanded"`,
    `indexer="fp8"`, `keep_fp8=True`).
    """
    from model.loader import load_checkpoint

    return load_checkpoint(path, device=device, dtype=dtype, **options)  # progress= passes too
