"""The engine: sequences over the paged caches, chunked prefill, batched decode, prefix reuse.

    engine = Engine(model.load(path, device="cuda"))
    for i, token in engine.generate([prompt_ids], [SamplingParams(max_new_tokens=256)]):
        ...

A sequence's prompt is first matched against the prefix cache (full blocks, by hash chain);
only the rest is prefilled, `prefill_chunk` tokens per forward call. Decoding runs one token of
every live sequence per step. Finished sequences release their blocks; full blocks stay cached
for the next request until memory pressure evicts them (least recently used first).
`generate` batches the prompts it is given; requests that arrive at different times (several
agents) are batched by `model.engine.server.Server`, which then owns the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from model.engine.backends import make_backend
from model.engine.blocks import ROOT_HASH, BlockPool, block_hashes, chain_hash
from model.engine.cache import PagedCache, Plan, blocks_for, plan_cache
from model.engine.errors import CacheFullError
from model.engine.forward import Runner, Step
from model.engine.sampling import SamplingParams, make_generator, sample
from model.transformer import DeepseekV32

log = logging.getLogger(__name__)

ENGINE_VERSION = (
    "1"  # bump when the cache layout or its arithmetic changes (persisted KV goes stale)
)


@dataclass
class Sequence:
    """One request's tokens and cache blocks."""

    tokens: list[int]
    params: SamplingParams
    prompt_len: int
    blocks: list[int] = field(default_factory=list)
    computed: int = 0  # leading tokens whose KV is in the cache
    reused: int = 0  # prompt tokens taken from the prefix cache
    registered: int = 0  # leading full blocks named in the prefix cache
    parent_hash: bytes = ROOT_HASH
    generator: torch.Generator | None = None
    generated: int = 0
    finished: bool = False

    @property
    def prefilled(self) -> int:
        """Prompt tokens run through the model (not reused)."""
        return self.prompt_len - self.reused


class Engine:
    """Serves one loaded `DeepseekV32` from paged latent / indexer-key caches."""

    def __init__(
        self,
        net: DeepseekV32,
        *,
        backend: str | None = None,
        block_size: int = 64,
        prefill_chunk: int = 4096,
        max_cached_tokens: int | None = None,
        prefix_cache: bool = True,
        checkpoint_id: str | None = None,
        cuda_graphs: bool | None = None,
    ):
        self.net, self.cfg = net, net.cfg
        self.device = net.lm_head.weight.device
        self.dtype = net.model.embed_tokens.weight.dtype
        self.block_size, self.prefill_chunk, self.prefix_cache = (
            block_size,
            prefill_chunk,
            prefix_cache,
        )
        self.checkpoint_id = checkpoint_id
        index_fp8 = net.opts.indexer == "fp8"
        self.plan: Plan = plan_cache(
            self.cfg,
            self.device,
            self.dtype,
            index_fp8,
            block_size,
            prefill_chunk,
            max_cached_tokens,
        )
        self.cache = PagedCache(
            self.cfg, self.plan.num_blocks, block_size, self.dtype, index_fp8, self.device
        )
        self.pool = BlockPool(self.plan.num_blocks, block_size)
        self.backend = make_backend(backend or net.opts.backend, self.device)
        self.runner = Runner(net, self.cache, self.backend)
        self.max_blocks_per_seq = blocks_for(self.plan.max_seq_tokens, block_size)
        use_graphs = (
            self.device.type == "cuda" and self.backend.name == "triton"
            if cuda_graphs is None
            else cuda_graphs
        )
        self.graphs = None
        if use_graphs:
            from model.engine.graphs import DecodeGraphs

            self.graphs = DecodeGraphs(self)

    # -- sequences -------------------------------------------------------------------------------

    def start(self, prompt: list[int], params: SamplingParams | None = None) -> Sequence:
        """Admit a request: check it fits, take its cached prefix (at least one token is left to
        prefill, whose logits the first sampled token needs)."""
        params = params or SamplingParams()
        if not prompt:
            raise ValueError("a prompt needs at least one token")
        self.plan.check_request(len(prompt), params.max_new_tokens)
        seq = Sequence(
            tokens=list(prompt),
            params=params,
            prompt_len=len(prompt),
            generator=make_generator(params, self.device),
        )
        if self.prefix_cache:
            hashes = block_hashes(prompt, self.block_size)[: (len(prompt) - 1) // self.block_size]
            hits = self.pool.lookup(hashes)
            for b in hits:
                self.pool.acquire(b)
            seq.blocks = list(hits)
            seq.computed = seq.reused = len(hits) * self.block_size
            seq.registered = len(hits)
            if hits:
                seq.parent_hash = hashes[len(hits) - 1]
        need = blocks_for(len(prompt), self.block_size) - len(seq.blocks)
        if need > self.pool.available:
            self.release(seq)
            raise CacheFullError(
                f"the prompt needs {need} more cache blocks; {self.pool.available} are free "
                f"(the rest hold running sequences)"
            )
        return seq

    def release(self, seq: Sequence) -> None:
        """Give a finished sequence's blocks back; its full blocks stay in the prefix cache."""
        for b in seq.blocks:
            self.pool.release(b)
        seq.blocks = []
        seq.finished = True

    def _grow(self, seq: Sequence, upto: int) -> None:
        while len(seq.blocks) * self.block_size < upto:
            seq.blocks.append(self.pool.allocate())

    def _register(self, seq: Sequence) -> None:
        if not self.prefix_cache:
            return
        bs = self.block_size
        while (seq.registered + 1) * bs <= seq.computed:
            i = seq.registered
            seq.parent_hash = chain_hash(seq.parent_hash, seq.tokens[i * bs : (i + 1) * bs])
            self.pool.register(seq.blocks[i], seq.parent_hash)
            seq.registered += 1

    def _table(self, seq: Sequence, width: int | None = None) -> torch.Tensor:
        blocks = seq.blocks + [0] * ((width or len(seq.blocks)) - len(seq.blocks))
        return torch.tensor(blocks, dtype=torch.int32, device=self.device)

    # -- forward steps ---------------------------------------------------------------------------

    @torch.no_grad()
    def prefill(self, seq: Sequence, all_logits: bool = False) -> torch.Tensor:
        """Run the uncached prompt tokens in chunks; logits of the last position `(vocab,)`, or of
        every prefilled position `(n, vocab)` with `all_logits`."""
        if seq.computed >= len(seq.tokens):
            raise ValueError("nothing to prefill: every token of this sequence is already cached")
        outs = []
        while seq.computed < len(seq.tokens):
            outs.append(self.prefill_next(seq, all_logits))
        return torch.cat(outs) if all_logits else outs[-1][-1]

    @torch.no_grad()
    def prefill_next(self, seq: Sequence, all_logits: bool = False) -> torch.Tensor:
        """Run the next `prefill_chunk` uncached tokens of `seq`; logits `(1, vocab)` of the chunk's
        last position, or `(n, vocab)` of all of them (a server interleaves these with decode
        steps so one long prompt does not stall the other sequences' streams)."""
        a = seq.computed
        b = min(len(seq.tokens), a + self.prefill_chunk)
        self._grow(seq, b)
        table = self._table(seq)
        pos = torch.arange(a, b, device=self.device)
        slots = table.long()[pos // self.block_size] * self.block_size + pos % self.block_size
        ids = torch.tensor(seq.tokens[a:b], dtype=torch.long, device=self.device)
        rows = None if all_logits else torch.tensor([b - a - 1], device=self.device)
        logits = self.runner(Step(ids, pos, slots, table, decode=False, start=a, logit_rows=rows))
        seq.computed = b
        self._register(seq)
        return logits

    @torch.no_grad()
    def decode(self, seqs: list[Sequence], tokens: list[int]) -> torch.Tensor:
        """Append one token to each sequence and return the next logits `(B, vocab)`."""
        for seq, tok in zip(seqs, tokens):
            seq.tokens.append(int(tok))
            self._grow(seq, seq.computed + 1)
        if self.graphs is not None and self.graphs.fits(seqs):
            logits = self.graphs.run(seqs)
        else:
            logits = self.runner(self._decode_step(seqs))
        for seq in seqs:
            seq.computed += 1
            self._register(seq)
        return logits

    def _decode_step(self, seqs: list[Sequence], width: int | None = None) -> Step:
        width = width or max(len(s.blocks) for s in seqs)
        tables = torch.stack([self._table(s, width) for s in seqs])  # (B, width)
        pos = torch.tensor([s.computed for s in seqs], dtype=torch.long, device=self.device)
        ids = torch.tensor(
            [s.tokens[s.computed] for s in seqs], dtype=torch.long, device=self.device
        )
        slots = (
            tables.long().gather(1, (pos // self.block_size)[:, None])[:, 0] * self.block_size
            + pos % self.block_size
        )
        return Step(ids, pos, slots, tables, decode=True, lens=(pos + 1).to(torch.int32))

    # -- generation ------------------------------------------------------------------------------

    def generate(
        self,
        prompts: list[list[int]],
        params: list[SamplingParams] | SamplingParams | None = None,
        sequences: list[Sequence] | None = None,
    ) -> Iterator[tuple[int, int]]:
        """Stream `(prompt index, token)` pairs as they are sampled; all prompts decode together.

        Pass `sequences` (a list) to get the `Sequence` objects back (reuse counts); they are
        released when the generator finishes or is closed.
        """
        if not isinstance(params, list):
            params = [params or SamplingParams()] * len(prompts)
        seqs: list[Sequence] = [] if sequences is None else sequences
        try:
            for p, sp in zip(prompts, params):
                seqs.append(self.start(p, sp))
            logits = torch.stack([self.prefill(s) for s in seqs])  # (B, vocab)
            live = [s for s in seqs if s.params.max_new_tokens > 0]
            rows = [i for i, s in enumerate(seqs) if s.params.max_new_tokens > 0]
            while live:
                picked = self.sample_next(live, logits[rows])
                for seq, tok in zip(live, picked):
                    if tok is not None:
                        yield seqs.index(seq), tok
                nxt = [(s, t) for s, t in zip(live, picked) if not s.finished]
                if not nxt:
                    break
                live = [s for s, _ in nxt]
                logits = self.decode(live, [t for _, t in nxt])
                rows = list(range(len(live)))
        finally:
            for s in seqs:
                if s.blocks:
                    self.release(s)

    def sample_next(self, seqs: list[Sequence], logits: torch.Tensor) -> list[int | None]:
        """Sample each sequence's next token from its logits `(B, vocab)` (one host read for the
        batch) and count it. A stop id finishes the sequence and is not streamed (None); the token
        that reaches `max_new_tokens` finishes it too but is streamed and kept in `tokens` for
        persistence (its KV is never computed). The others are to be fed to `decode`."""
        picked = sample(logits, [s.params for s in seqs], [s.generator for s in seqs]).tolist()
        out: list[int | None] = []
        for seq, tok in zip(seqs, picked):
            seq.generated += 1
            if tok in seq.params.stop_ids:
                seq.finished = True
                out.append(None)
                continue
            if seq.generated >= seq.params.max_new_tokens:
                seq.tokens.append(tok)
                seq.finished = True
            out.append(tok)
        return out

    def cached_tokens(self, tokens: list[int]) -> int:
        """How many leading tokens of `tokens` the prefix cache holds right now."""
        return len(self.pool.lookup(block_hashes(tokens, self.block_size))) * self.block_size
