"""The checkpoints loaded for `local:` providers, shared by every provider of the process.

Providers for the same checkpoint folder with the same load options (device, dtype, backend,
indexer, cache size) share one loaded model, one `Engine` and one batching `Server`: two agents on
one model load the weights once and decode in one batch instead of queueing behind each other.
(Each provider keeps its own `KVStore`, which holds only a folder and a size cap, both the
provider's settings, and its own tokenizer, read when the provider checks the checkpoint; engine
work runs on the shared worker like everything else.) Each provider holds a reference; the last
one to let go closes the server and drops the entry, so the model's memory is freed with the last
provider.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import ConfigError

_LOCK = threading.Lock()  # loads run under it too: two agents starting at once load one model
_LOADED: dict[tuple, LoadedModel] = {}


@dataclass
class LoadedModel:
    """One checkpoint in memory and what serves it."""

    key: tuple
    net: Any  # model.transformer.DeepseekV32
    engine: Any  # model.engine.Engine, touched only by the server's worker
    server: Any  # model.engine.server.Server
    refs: int = field(default=0)


def acquire(
    folder: Path,
    *,
    device: str,
    backend: str,
    indexer: str,
    max_cached_tokens: int | None,
    progress: Any = None,
) -> LoadedModel:
    """The loaded model for these options, loading it on first use; pair with `release`.
    Raises ConfigError when the checkpoint cannot be loaded."""
    import torch

    dtype = torch.bfloat16 if device != "cpu" else torch.float32
    key = (str(folder.resolve()), device, str(dtype), backend, indexer, max_cached_tokens)
    with _LOCK:
        entry = _LOADED.get(key)
        if entry is None:
            entry = _load(
                key,
                folder,
                device,
                dtype,
                backend,
                indexer,
                max_cached_tokens,
                progress,
            )
            _LOADED[key] = entry
        entry.refs += 1
        return entry


def release(entry: LoadedModel) -> None:
    """Drop one provider's reference; the last one closes the server (requests still in flight
    end with an error) and forgets the model."""
    with _LOCK:
        entry.refs -= 1
        if entry.refs > 0:
            return
        if _LOADED.get(entry.key) is entry:
            del _LOADED[entry.key]
    entry.server.close()


def release_later(entry: LoadedModel) -> None:
    """`release` from a garbage collector's callback: that may run in any thread at any
    allocation, even one holding `_LOCK` in the middle of a load, so it must not take the lock
    or wait for the worker there; a short thread of its own does both."""
    try:
        threading.Thread(target=release, args=(entry,), name="godwit-release", daemon=True).start()
    except RuntimeError:  # the interpreter is shutting down: the process frees everything
        pass


def loaded() -> list[LoadedModel]:
    """The models loaded now (for tests and diagnostics)."""
    with _LOCK:
        return list(_LOADED.values())


def _load(
    key: tuple,
    folder: Path,
    device: str,
    dtype: Any,
    backend: str,
    indexer: str,
    max_cached_tokens: int | None,
    progress: Any,
) -> LoadedModel:
    import model as dsv32
    from model.engine import Engine, EngineError
    from model.engine.persist import checkpoint_fingerprint
    from model.engine.server import Server

    try:
        net = dsv32.load(
            folder, device=device, dtype=dtype, indexer=indexer, backend=backend, progress=progress
        )
        engine = Engine(
            net, checkpoint_id=checkpoint_fingerprint(folder), max_cached_tokens=max_cached_tokens
        )
    except (dsv32.ModelError, EngineError) as exc:
        raise ConfigError(f"Cannot load local:{folder}: {exc}") from exc
    return LoadedModel(
        key=key,
        net=net,
        engine=engine,
        server=Server(engine, name=f"godwit-engine {folder.name}"),
    )
