"""CUDA-graph capture of the decode step, one graph per batch-size bucket.

The whole step (embedding, every layer's projections, cache writes, paged indexer, sparse MLA,
experts, LM head) is recorded once per bucket over static input tensors and replayed; a step then
costs one graph launch instead of hundreds of kernel launches. Sampling runs after the replay on
the same device. A batch smaller than its bucket is padded with rows that write into one scratch
block the pool never hands out, so padding cannot touch a real sequence's cache.
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING

import torch

from model.engine.forward import Step

if TYPE_CHECKING:
    from model.engine.engine import Engine, Sequence

log = logging.getLogger(__name__)

BUCKETS = (1, 2, 4, 8, 16, 32)


class DecodeGraphs:
    """Lazily captured decode graphs for batch sizes up to the largest bucket."""

    def __init__(self, engine: Engine):
        self.engine = weakref.proxy(engine)  # the engine owns this object; no reference cycle
        self.max_width = engine.max_blocks_per_seq
        self.scratch = engine.pool.allocate()  # never released: the padding rows' block
        # keyed by (batch bucket, block-table width): the paged indexer scores every position the
        # table can address, so a 4K context should not pay for a 160K-wide table
        self.graphs: dict[tuple[int, int], tuple[torch.cuda.CUDAGraph, Step, torch.Tensor]] = {}
        self.failed = False

    def fits(self, seqs: list[Sequence]) -> bool:
        """Whether a captured graph can serve this batch."""
        return not self.failed and len(seqs) <= BUCKETS[-1] and all(len(s.blocks) <= self.max_width for s in seqs)

    def _width(self, seqs: list[Sequence]) -> int:
        need = max(len(s.blocks) for s in seqs)
        width = 16
        while width < need:
            width *= 2
        return min(width, self.max_width)

    def _static(self, bucket: int, width: int) -> Step:
        dev = self.engine.device
        bs = self.engine.block_size
        tables = torch.full((bucket, width), self.scratch, dtype=torch.int32, device=dev)
        return Step(ids=torch.zeros(bucket, dtype=torch.long, device=dev),
                    positions=torch.zeros(bucket, dtype=torch.long, device=dev),
                    slots=torch.full((bucket,), self.scratch * bs, dtype=torch.long, device=dev),
                    tables=tables, decode=True, lens=torch.ones(bucket, dtype=torch.int32, device=dev))

    def _capture(self, bucket: int, width: int) -> tuple[torch.cuda.CUDAGraph, Step, torch.Tensor]:
        runner = self.engine.runner
        step = self._static(bucket, width)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):  # warm-up compiles the kernels and settles the allocator
                runner(step)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            logits = runner(step)
        return graph, step, logits

    def run(self, seqs: list[Sequence]) -> torch.Tensor:
        """Fill the bucket's static inputs from `seqs`, replay, and return logits `(B, vocab)`."""
        b = len(seqs)
        bucket = next(x for x in BUCKETS if x >= b)
        width = self._width(seqs)
        key = (bucket, width)
        if key not in self.graphs:
            try:
                self.graphs[key] = self._capture(bucket, width)
            except RuntimeError as exc:  # capture unsupported by some op: stay eager, say so once
                log.warning("CUDA-graph capture of the decode step failed (%s); decoding eagerly", exc)
                self.failed = True
                return self.engine.runner(self.engine._decode_step(seqs))
        graph, static, logits = self.graphs[key]
        step = self.engine._decode_step(seqs, width)
        static.ids[:b].copy_(step.ids)
        static.positions[:b].copy_(step.positions)
        static.slots[:b].copy_(step.slots)
        static.tables[:b].copy_(step.tables)
        static.lens[:b].copy_(step.lens)
        if b < bucket:  # padding rows: position 0 of the scratch block
            static.ids[b:].zero_()
            static.positions[b:].zero_()
            static.slots[b:].fill_(self.scratch * self.engine.block_size)
            static.tables[b:].fill_(self.scratch)
            static.lens[b:].fill_(1)
        graph.replay()
        return logits[:b].clone()
