"""The in-process DSA engine: paged latent and indexer-key caches, chunked prefill, batched decode,
prefix reuse across requests, persisted KV and CUDA-graph decoding (see model/README.md)."""

from model.engine.engine import ENGINE_VERSION, Engine, Sequence
from model.engine.errors import CacheFullError, EngineError, RequestTooLargeError
from model.engine.sampling import SamplingParams

__all__ = [
    "ENGINE_VERSION",
    "CacheFullError",
    "Engine",
    "EngineError",
    "RequestTooLargeError",
    "SamplingParams",
    "Sequence",
]
