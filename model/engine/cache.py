"""The paged caches and the memory planner that sizes them.

Per layer, per token:
- the latent row: 576 values in the model dtype (bf16 on a GPU), the normalised 512-dim KV latent
  then the 64-dim rotary key, laid out `(layers, num_blocks, block_size, 576)`;
- the indexer key: 128 values, FP8 e4m3 after a Hadamard rotation with one float32 power-of-two
  scale per key (DeepSeek's reference quantisation; `kernels/README.md`'s layout), or in the model
  dtype with no scale when the indexer runs exact.

One block id addresses a block of `block_size` positions in all of these tensors at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from model.config import ModelConfig
from model.engine.errors import RequestTooLargeError
from model.fp8 import quantize_vectors
from model.indexer import hadamard

GiB = 1024**3


class PagedCache:
    """Latent, indexer-key and indexer-scale caches for every layer, in blocks."""

    def __init__(
        self,
        cfg: ModelConfig,
        num_blocks: int,
        block_size: int,
        dtype: torch.dtype,
        index_fp8: bool,
        device: torch.device,
    ):
        layers, width = cfg.num_hidden_layers, cfg.kv_lora_rank + cfg.qk_rope_head_dim
        self.num_blocks, self.block_size, self.index_fp8 = num_blocks, block_size, index_fp8
        self.latent = torch.zeros(layers, num_blocks, block_size, width, dtype=dtype, device=device)
        if index_fp8:
            self.index = torch.zeros(
                layers,
                num_blocks,
                block_size,
                cfg.index_head_dim,
                dtype=torch.float8_e4m3fn,
                device=device,
            )
            self.index_scale: torch.Tensor | None = torch.zeros(
                layers, num_blocks, block_size, dtype=torch.float32, device=device
            )
            self.rotation: torch.Tensor | None = hadamard(cfg.index_head_dim, device)
        else:
            self.index = torch.zeros(
                layers, num_blocks, block_size, cfg.index_head_dim, dtype=dtype, device=device
            )
            self.index_scale, self.rotation = None, None

    def tensors(self) -> dict[str, torch.Tensor]:
        """Every cache tensor by name (blocks on axis 1); what persistence saves and restores."""
        out = {"latent": self.latent, "index": self.index}
        if self.index_scale is not None:
            out["index_scale"] = self.index_scale
        return out

    def quantize_keys(self, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Indexer keys `(N, Di)` as stored: (FP8 keys, scales `(N,)`) or (keys in cache dtype, None)."""
        if self.rotation is None:
            return keys.to(self.index.dtype), None
        k8, scale = quantize_vectors(keys.float() @ self.rotation)  # (N, Di), (N, 1)
        return k8, scale.squeeze(-1)

    def write(
        self, layer: int, slots: torch.Tensor, latent: torch.Tensor, keys: torch.Tensor
    ) -> None:
        """Store rows for physical slots `(N,)` (block * block_size + offset): latent `(N, 576)`,
        indexer keys `(N, Di)` (quantised here when the cache is FP8)."""
        self.latent[layer].view(-1, self.latent.shape[-1]).index_copy_(
            0, slots, latent.to(self.latent.dtype)
        )
        k, scale = self.quantize_keys(keys)
        flat = self.index[layer].view(-1, self.index.shape[-1])
        # index_copy_ has no float8 kernel on every device; the bytes are what matter.
        if flat.dtype == torch.float8_e4m3fn:
            flat.view(torch.uint8).index_copy_(0, slots, k.view(torch.uint8))
        else:
            flat.index_copy_(0, slots, k)
        if scale is not None:
            self.index_scale[layer].view(-1).index_copy_(0, slots, scale)

    def rows(self, blocks: torch.Tensor, length: int) -> torch.Tensor:
        """Physical rows `(length,)` int64 of positions 0..length-1 of a sequence with `blocks`."""
        pos = torch.arange(length, device=blocks.device)
        return blocks.long()[pos // self.block_size] * self.block_size + pos % self.block_size

    def keys(self, layer: int, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Indexer keys `(S, Di)` and scales `(S,)` (or None) of the given physical rows, in order."""
        flat = self.index[layer].view(-1, self.index.shape[-1])
        if flat.dtype == torch.float8_e4m3fn:
            k = flat.view(torch.uint8).index_select(0, rows).view(torch.float8_e4m3fn)
        else:
            k = flat.index_select(0, rows)
        scale = (
            None
            if self.index_scale is None
            else self.index_scale[layer].view(-1).index_select(0, rows)
        )
        return k, scale

    def latent_rows(self, layer: int, rows: torch.Tensor) -> torch.Tensor:
        """Latent rows `(S, 576)` of the given physical rows, in order."""
        return self.latent[layer].view(-1, self.latent.shape[-1]).index_select(0, rows)


def bytes_per_token(cfg: ModelConfig, dtype: torch.dtype, index_fp8: bool) -> int:
    """Cache bytes one token takes over all layers."""
    elt = torch.empty((), dtype=dtype).element_size()
    latent = (cfg.kv_lora_rank + cfg.qk_rope_head_dim) * elt
    index = cfg.index_head_dim * 1 + 4 if index_fp8 else cfg.index_head_dim * elt
    return cfg.num_hidden_layers * (latent + index)


def workspace_bytes(cfg: ModelConfig, chunk: int, dtype: torch.dtype) -> int:
    """A bound on the activations of one prefill chunk: the largest transient tensors are the
    absorbed queries and outputs `(chunk, H, 576)` in float32, the MoE's gathered rows and
    hidden states, the logits, and the indexer's score block (at most 1 GiB, `kernels.indexer`)."""
    elt = torch.empty((), dtype=dtype).element_size()
    h = cfg.num_attention_heads
    attn = chunk * h * (cfg.kv_lora_rank + cfg.qk_rope_head_dim) * 4 * 4
    moe = (
        chunk
        * cfg.num_experts_per_tok
        * (cfg.hidden_size * 2 + cfg.moe_intermediate_size * 4)
        * elt
    )
    dense = chunk * (cfg.intermediate_size * 3 + cfg.hidden_size * 8) * elt
    logits = chunk * cfg.vocab_size * 4
    scores = min(GiB, chunk * cfg.max_position_embeddings * 4)
    return attn + moe + dense + logits + scores


@dataclass(frozen=True)
class Plan:
    """How many cache blocks the engine allocates, and the numbers behind it."""

    num_blocks: int
    block_size: int
    bytes_per_token: int
    free_bytes: int | None  # device memory free before the cache (None: a CPU budget was given)
    workspace_bytes: int
    max_seq_tokens: int  # the longest sequence (prompt + output) the engine accepts

    @property
    def tokens(self) -> int:
        """Token positions the cache holds in all."""
        return self.num_blocks * self.block_size

    def check_request(self, prompt_tokens: int, new_tokens: int) -> None:
        """Refuse, before anything is allocated, a request that can never fit."""
        want = prompt_tokens + new_tokens
        fit = min(self.tokens, self.max_seq_tokens)
        if want <= fit:
            return
        where = (
            f"{self.free_bytes / GiB:.1f} GiB of device memory was free for the cache"
            if self.free_bytes is not None
            else f"the cache budget is {self.tokens} tokens"
        )
        raise RequestTooLargeError(
            f"request needs {want} tokens ({prompt_tokens} prompt + {new_tokens} to generate) but at most "
            f"{fit} fit ({self.num_blocks} blocks of {self.block_size} tokens at {self.bytes_per_token} bytes "
            f"per token; {where}; the model accepts {self.max_seq_tokens} positions). Shorten the "
            f"conversation or lower max_new_tokens, or give the cache more memory (free GPU memory, "
            f"a larger max_cached_tokens)."
        )


def plan_cache(
    cfg: ModelConfig,
    device: torch.device,
    dtype: torch.dtype,
    index_fp8: bool,
    block_size: int,
    chunk: int,
    max_cached_tokens: int | None = None,
    memory_fraction: float = 0.92,
) -> Plan:
    """Size the cache: `max_cached_tokens` if given, else what the free device memory holds after
    a workspace reserve (on CUDA), capped at what can be used. Refuses when not even one block fits."""
    per_token = bytes_per_token(cfg, dtype, index_fp8)
    ws = workspace_bytes(cfg, chunk, dtype)
    max_seq = int(cfg.max_position_embeddings)
    free = None
    if max_cached_tokens is not None:
        tokens = int(max_cached_tokens)
    elif device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        tokens = int((free * memory_fraction - ws) // per_token)
        tokens = min(tokens, 4 * max_seq)  # room for several full-length sequences is plenty
    else:
        tokens = min(max_seq, 32768)
    blocks = tokens // block_size
    if blocks < 1:
        have = f"{free / GiB:.2f} GiB free" if free is not None else f"a budget of {tokens} tokens"
        raise RequestTooLargeError(
            f"no room for a KV cache: {have}, a prefill workspace of {ws / GiB:.2f} GiB and "
            f"{per_token * block_size} bytes per {block_size}-token block. Free device memory, use a "
            f"smaller prefill chunk, or load the weights in FP8 (keep_fp8=True)."
        )
    return Plan(
        num_blocks=blocks,
        block_size=block_size,
        bytes_per_token=per_token,
        free_bytes=free,
        workspace_bytes=ws,
        max_seq_tokens=max_seq,
    )


def blocks_for(tokens: int, block_size: int) -> int:
    """Blocks needed for `tokens` positions."""
    return math.ceil(tokens / block_size)
