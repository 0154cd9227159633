"""Godwit's Triton kernels for DeepSeek Sparse Attention (DSA) and FP8 experts.

Public entry points (imported lazily, so `import kernels` needs neither a GPU
nor Triton until one of them is used):

- `lightning_indexer(q, k, weights, topk, q_pos, k_scale=None)`: top-k key indices per query.
- `lightning_indexer_paged(q, k_cache, weights, topk, block_table, seq_lens, k_scale_cache=None)`:
  the same for single-token decode queries over a paged indexer-key cache.
- `sparse_mla(q, kv, indices, sm_scale, dv=512)`: sparse MLA prefill (absorbed form).
- `sparse_mla_decode(q, kv_cache, block_table, seq_lens, indices, sm_scale, dv=512, num_splits=None)`:
  split-K sparse MLA decode over a paged latent cache.
- `radix_topk(scores, lengths, topk)`: exact top-k indices of each row's first `lengths[r]` entries.
- `fp8_grouped_gemm(x, x_scale, w, w_scale, ends)`: block-scaled FP8 GEMM of expert-sorted rows.
- `grouped_gemm(x, w, ends)`: the same in bf16 without scales (decode-sized groups).
- `quantize_rows(x, block=128, swiglu=False)`: per-(row, block) e4m3 activations, power-of-two scales.

See kernels/README.md for the layouts.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .errors import KernelError, KernelInputError

_LAZY = {
    "lightning_indexer": "kernels.indexer",
    "lightning_indexer_paged": "kernels.indexer",
    "sparse_mla": "kernels.mla",
    "sparse_mla_decode": "kernels.mla",
    "radix_topk": "kernels.topk",
    "fp8_grouped_gemm": "kernels.moe",
    "grouped_gemm": "kernels.moe",
    "quantize_rows": "kernels.moe",
}

__all__ = ["KernelError", "KernelInputError", *_LAZY]  # noqa: PLE0604 - _LAZY is a dict of names


def __getattr__(name: str) -> Any:
    # Lazy so that `import kernels` (e.g. by the model package on a CPU-only box)
    # does not import torch and triton until a kernel is actually asked for.
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kernels' has no attribute {name!r}")
