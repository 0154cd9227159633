"""Block manager: reference-counted cache blocks with automatic prefix caching.

A block holds `block_size` consecutive token positions of one sequence in every layer's latent
cache *and* indexer-key cache (one block id addresses both, so the two can never part ways).
A full block is named by a hash chain over token ids, `h_i = H(h_{i-1}, tokens of block i)`, as
vLLM's automatic prefix caching does: two sequences whose first n blocks hold the same tokens
share those n blocks. Blocks nobody references stay cached (least recently used first out) until
the pool needs them.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from model.engine.errors import CacheFullError

ROOT_HASH = b"godwit-kv-root"


def chain_hash(parent: bytes, tokens: list[int] | tuple[int, ...]) -> bytes:
    """The hash of a full block whose predecessor's hash is `parent`."""
    h = hashlib.blake2b(parent, digest_size=16)
    h.update(b"".join(int(t).to_bytes(4, "little", signed=False) for t in tokens))
    return h.digest()


def block_hashes(tokens: list[int], block_size: int) -> list[bytes]:
    """Hash chain of every full block of `tokens`."""
    out, parent = [], ROOT_HASH
    for i in range(len(tokens) // block_size):
        parent = chain_hash(parent, tokens[i * block_size : (i + 1) * block_size])
        out.append(parent)
    return out


class BlockPool:
    """Free list, reference counts, hash -> block map and the LRU order of evictable blocks."""

    def __init__(self, num_blocks: int, block_size: int):
        self.num_blocks, self.block_size = num_blocks, block_size
        self.refs = [0] * num_blocks
        self.hash_of: list[bytes | None] = [None] * num_blocks
        self.by_hash: dict[bytes, int] = {}
        self.free: list[int] = list(range(num_blocks - 1, -1, -1))  # pop() hands out block 0 first
        self.evictable: OrderedDict[int, None] = OrderedDict()  # cached, unreferenced; oldest first
        self.evictions = 0

    @property
    def available(self) -> int:
        """Blocks that an allocation may take (free plus evictable)."""
        return len(self.free) + len(self.evictable)

    def allocate(self) -> int:
        """A block with reference count 1: a free one, else the least recently used cached one."""
        if self.free:
            block = self.free.pop()
        elif self.evictable:
            block, _ = self.evictable.popitem(last=False)
            self._forget(block)
            self.evictions += 1
        else:
            raise CacheFullError(
                f"all {self.num_blocks} cache blocks are in use by running sequences"
            )
        self.refs[block] = 1
        return block

    def lookup(self, hashes: list[bytes]) -> list[int]:
        """The longest run of leading blocks already cached for `hashes` (not yet referenced)."""
        hits = []
        for h in hashes:
            block = self.by_hash.get(h)
            if block is None:
                break
            hits.append(block)
        return hits

    def acquire(self, block: int) -> None:
        """Take a reference on a cached block (prefix reuse)."""
        if self.refs[block] == 0:
            self.evictable.pop(block, None)
        self.refs[block] += 1

    def release(self, block: int) -> None:
        """Drop a reference; a block that is no longer used stays cached if it has a hash."""
        self.refs[block] -= 1
        if self.refs[block] < 0:
            raise RuntimeError(f"block {block} released more often than acquired")
        if self.refs[block] == 0:
            if self.hash_of[block] is not None:
                self.evictable[block] = None  # most recently used end
            else:
                self.free.append(block)

    def register(self, block: int, h: bytes) -> int:
        """Name a just-filled block by its hash. If another block already carries that hash (two
        sequences computed the same prefix), the existing one is returned and should be used."""
        existing = self.by_hash.get(h)
        if existing is not None and existing != block:
            return existing
        self.hash_of[block] = h
        self.by_hash[h] = block
        return block

    def touch(self, blocks: list[int]) -> None:
        """Mark cached blocks as recently used (keeps a reused prefix from being evicted first)."""
        for b in blocks:
            if b in self.evictable:
                self.evictable.move_to_end(b)

    def _forget(self, block: int) -> None:
        h = self.hash_of[block]
        if h is not None and self.by_hash.get(h) == block:
            del self.by_hash[h]
        self.hash_of[block] = None

    def clear_cache(self) -> None:
        """Drop every cached-but-unreferenced block (prefix caching off, or tests)."""
        while self.evictable:
            block, _ = self.evictable.popitem(last=False)
            self._forget(block)
            self.free.append(block)
