"""Persisted KV: a conversation's cached blocks written under `$GODWIT_HOME/kv/` and read back.

Layout: `kv/<checkpoint id>-v<engine version>/<hash of the last block>.safetensors`, one file per
saved prefix, holding every cache tensor's rows for the prefix's full blocks (latent, indexer
keys and, for the FP8 indexer, their scales: the index travels with the latents) and the token
ids. The metadata repeats the checkpoint id, engine version, block size, dtypes and shapes, and a
file whose metadata disagrees with the running engine is ignored with one log line, as is a
missing, truncated or otherwise unreadable one: persistence only ever saves work, it never fails
a request. A size cap over the whole `kv/` folder deletes the oldest files first.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from model.engine.blocks import block_hashes

if TYPE_CHECKING:
    from model.engine.engine import Engine

log = logging.getLogger(__name__)

FORMAT = "godwit-kv-1"
DEFAULT_CAP_BYTES = 16 * 1024**3


def godwit_home() -> Path:
    """`$GODWIT_HOME`, else `~/.godwit` (DESIGN.md)."""
    return Path(os.environ.get("GODWIT_HOME") or Path.home() / ".godwit")


def checkpoint_fingerprint(path: str | Path) -> str:
    """A short id of a checkpoint folder: its config, its index and the names and sizes of its
    weight files (cheap: no weight bytes are read)."""
    path = Path(path)
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors.index.json"):
        f = path / name
        if f.is_file():
            h.update(name.encode() + b"\0" + f.read_bytes())
    for f in sorted(path.glob("*.safetensors")):
        h.update(f"{f.name}:{f.stat().st_size}".encode())
    return h.hexdigest()[:24]


class KVStore:
    """Save and restore an engine's cached prefixes."""

    def __init__(
        self, engine: Engine, root: Path | None = None, cap_bytes: int = DEFAULT_CAP_BYTES
    ):
        if not engine.checkpoint_id:
            raise ValueError(
                "persisted KV needs the engine's checkpoint_id (model.engine.persist.checkpoint_fingerprint)"
            )
        from model.engine.engine import ENGINE_VERSION

        self.engine, self.version = engine, ENGINE_VERSION
        self.root = root or godwit_home() / "kv"
        self.dir = self.root / f"{engine.checkpoint_id}-v{ENGINE_VERSION}"
        self.cap_bytes = cap_bytes

    def _meta(self) -> dict[str, str]:
        e = self.engine
        shapes = {k: list(t.shape[:1]) + list(t.shape[2:]) for k, t in e.cache.tensors().items()}
        return {
            "format": FORMAT,
            "checkpoint": str(e.checkpoint_id),
            "engine": self.version,
            "block_size": str(e.block_size),
            "dtype": str(e.dtype),
            "indexer": e.net.opts.indexer,
            "shapes": repr(sorted(shapes.items())),
        }

    def save(self, tokens: list[int]) -> Path | None:
        """Write the cached full blocks that start `tokens`; the file path, or None if none are cached."""
        snap = self.snapshot(tokens)
        return None if snap is None else self.write(*snap)

    def snapshot(self, tokens: list[int]) -> tuple[Path, dict[str, torch.Tensor] | None] | None:
        """The engine half of `save`: the target file and the cached blocks' rows copied to host
        memory (None when that file is already on disk), or None when nothing is cached. A server
        runs this on its worker and `write` elsewhere, so the disk write stalls no decoding."""
        e = self.engine
        hashes = block_hashes(tokens, e.block_size)
        blocks = e.pool.lookup(hashes)
        if not blocks:
            return None
        target = self.dir / f"{hashes[len(blocks) - 1].hex()}.safetensors"
        if target.is_file():
            return target, None
        idx = torch.tensor(blocks, device=e.device)
        tensors = {}
        for name, t in e.cache.tensors().items():
            rows = t.index_select(1, idx)  # (layers, n, block, ...)
            tensors[name] = (
                (rows.view(torch.uint8) if rows.dtype == torch.float8_e4m3fn else rows)
                .cpu()
                .contiguous()
            )
        tensors["tokens"] = torch.tensor(tokens[: len(blocks) * e.block_size], dtype=torch.int64)
        return target, tensors

    def write(self, target: Path, tensors: dict[str, torch.Tensor] | None) -> Path:
        """The disk half of `save` (touches the engine no more): write a snapshot, or mark an
        existing file as the newest for the size cap."""
        from safetensors.torch import save_file

        if tensors is None:
            os.utime(target)
            return target
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        save_file(tensors, str(tmp), metadata=self._meta())
        os.replace(tmp, target)  # a crash mid-write leaves no half file under the real name
        self._enforce_cap()
        return target

    def load(self, tokens: list[int]) -> int:
        """Restore the longest saved prefix of `tokens` into the prefix cache; tokens restored."""
        found = self.find(tokens)
        return 0 if found is None else self.restore(*found)

    def find(self, tokens: list[int]) -> tuple[Path, list[int]] | None:
        """The disk half of `load` (touches no engine state): the file holding the longest saved
        prefix of `tokens` and that prefix, or None."""
        bs = self.engine.block_size
        best: tuple[int, Path] | None = None
        files = (
            sorted(self.dir.glob("*.safetensors"), key=lambda f: f.stat().st_mtime, reverse=True)
            if self.dir.is_dir()
            else []
        )
        if not files:
            log.info("no persisted KV for checkpoint %s in %s", self.engine.checkpoint_id, self.dir)
            return None
        for f in files:
            saved = self._read_tokens(f)
            if saved is None:
                continue
            n = 0
            limit = min(len(saved), len(tokens)) // bs * bs
            while n < limit and saved[n] == tokens[n]:
                n += 1
            n = n // bs * bs
            if n and (best is None or n > best[0]):
                best = (n, f)
        return None if best is None else (best[1], tokens[: best[0]])

    def _read_tokens(self, f: Path) -> list[int] | None:
        """The token ids of a file whose metadata fits this engine, else None (logged)."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(f), framework="pt") as h:
                meta = h.metadata() or {}
                tokens = h.get_tensor("tokens").tolist()
        except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
            log.warning("ignoring unreadable KV file %s: %s", f, exc)
            return None
        want = self._meta()
        for key in ("format", "checkpoint", "engine", "block_size", "dtype", "indexer", "shapes"):
            if meta.get(key) != want[key]:
                log.warning(
                    "ignoring KV file %s: its %s is %r, this engine's is %r",
                    f,
                    key,
                    meta.get(key),
                    want[key],
                )
                return None
        return tokens

    def restore(self, f: Path, tokens: list[int]) -> int:
        """The engine half of `load`: the blocks of `tokens` (a prefix saved in `f`) that the
        prefix cache lacks, read into free blocks and named there; tokens now cached."""
        from safetensors import SafetensorError, safe_open

        e = self.engine
        hashes = block_hashes(tokens, e.block_size)
        present = len(e.pool.lookup(hashes))
        wanted = min(len(hashes), present + e.pool.available)
        if wanted <= present:
            return present * e.block_size
        try:
            with safe_open(str(f), framework="pt", device=str(e.device)) as h:
                data = {name: h.get_slice(name)[:, present:wanted] for name in e.cache.tensors()}
        except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
            log.warning("ignoring unreadable KV file %s: %s", f, exc)
            return present * e.block_size
        blocks = [e.pool.allocate() for _ in range(wanted - present)]
        idx = torch.tensor(blocks, device=e.device)
        for name, t in e.cache.tensors().items():
            src = data[name].to(e.device)
            target = t.view(torch.uint8) if t.dtype == torch.float8_e4m3fn else t
            target.index_copy_(1, idx, src.view(target.dtype) if src.dtype != target.dtype else src)
        for b, h in zip(blocks, hashes[present:wanted]):
            e.pool.register(b, h)
            e.pool.release(b)  # cached, unreferenced: the next request takes it by hash
        return wanted * e.block_size

    def _enforce_cap(self) -> None:
        files = sorted(self.root.glob("*/*.safetensors"), key=lambda f: f.stat().st_mtime)
        total = sum(f.stat().st_size for f in files)
        for f in files[:-1]:  # the file just written always stays
            if total <= self.cap_bytes:
                break
            total -= f.stat().st_size
            f.unlink(missing_ok=True)
            log.info("KV cache over %d bytes: removed the oldest file %s", self.cap_bytes, f)
