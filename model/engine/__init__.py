"""The in-process DSA engine: paged latent and indexer-key caches, chunked prefill, batched decode,
prefix reuse across requests, persisted KV, CUDA-graph decoding and a continuous-batching server
(see model/README.md)."""

from model.engine.engine import ENGINE_VERSION, Engine, Sequence
from model.engine.errors import CacheFullError, EngineError, RequestTooLargeError
from model.engine.sampling import SamplingParams
from model.engine.server import Request, Server, ServerClosed

__all__ = [
    "ENGINE_VERSION",
    "CacheFullError",
    "Engine",
    "EngineError",
    "Request",
    "RequestTooLargeError",
    "SamplingParams",
    "Sequence",
    "Server",
    "ServerClosed",
]
