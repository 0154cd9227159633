"""The engine on one GPU: correctness at full width, the context table, agent replay, KV reload.

    python -m benchmarks.engine_bench [--sections check,table,reload,serve,replay] [--sizes 4096,...]
    python -m benchmarks.engine_bench --tiny      (a CPU dry run of every section at toy sizes)

Stand-in model (issue 9): the released DeepSeek-V3.2 config.json with `num_hidden_layers` 4,
`first_k_dense_replace` 1, 16 routed experts, 4 per token, `n_group` 4, `topk_group` 2; random bf16
weights (5.3 B parameters). Every section has a time guard so one slow size cannot eat the call;
each prints its rows as it goes and a markdown table at the end (also written to $OUT if set).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.config import RunOptions, parse_config
from model.engine import Engine, SamplingParams
from model.engine.persist import KVStore
from model.generate import decode_step
from model.rope import inv_frequencies
from model.transformer import DeepseekV32

RELEASED = {  # DeepSeek-V3.2's config.json (the fields the architecture reads)
    "vocab_size": 129280,
    "hidden_size": 7168,
    "intermediate_size": 18432,
    "moe_intermediate_size": 2048,
    "num_hidden_layers": 61,
    "num_attention_heads": 128,
    "num_key_value_heads": 128,
    "q_lora_rank": 1536,
    "kv_lora_rank": 512,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "v_head_dim": 128,
    "n_routed_experts": 256,
    "n_shared_experts": 1,
    "num_experts_per_tok": 8,
    "n_group": 8,
    "topk_group": 4,
    "routed_scaling_factor": 2.5,
    "norm_topk_prob": True,
    "first_k_dense_replace": 3,
    "index_topk": 2048,
    "index_n_heads": 64,
    "index_head_dim": 128,
    "max_position_embeddings": 163840,
    "rope_theta": 10000,
    "rope_scaling": {
        "type": "yarn",
        "factor": 40,
        "original_max_position_embeddings": 4096,
        "beta_fast": 32,
        "beta_slow": 1,
        "mscale": 1.0,
        "mscale_all_dim": 1.0,
    },
    "rms_norm_eps": 1e-6,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "tie_word_embeddings": False,
    "scoring_func": "sigmoid",
    "topk_method": "noaux_tc",
    "hidden_act": "silu",
}
STAND_IN = {
    "num_hidden_layers": 4,
    "first_k_dense_replace": 1,
    "n_routed_experts": 16,
    "num_experts_per_tok": 4,
    "n_group": 4,
    "topk_group": 2,
}
TINY = {
    "vocab_size": 512,
    "hidden_size": 64,
    "intermediate_size": 128,
    "moe_intermediate_size": 32,
    "num_attention_heads": 4,
    "q_lora_rank": 48,
    "kv_lora_rank": 32,
    "qk_nope_head_dim": 16,
    "qk_rope_head_dim": 16,
    "v_head_dim": 16,
    "index_topk": 8,
    "index_n_heads": 16,
    "index_head_dim": 32,
    "n_routed_experts": 8,
    "num_experts_per_tok": 2,
}

ROWS: list[dict] = []


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def record(section: str, **row) -> None:
    row = {"section": section, **row}
    ROWS.append(row)
    say(json.dumps(row))


def build(tiny: bool, device: torch.device, dtype: torch.dtype) -> DeepseekV32:
    """The stand-in with random weights, built straight on the device."""
    cfg = parse_config({**RELEASED, **STAND_IN, **(TINY if tiny else {})})
    with torch.device("meta"):
        net = DeepseekV32(cfg, RunOptions())
    net.to_empty(device=device)
    g = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.fill_(1.0)
            elif name.endswith("k_norm.bias"):
                p.zero_()
            else:
                p.normal_(0.0, 0.02, generator=g)
        for layer in net.model.layers:
            ix = layer.self_attn.indexer
            ix.weights_proj.weight.data = ix.weights_proj.weight.data.float()
            if hasattr(layer.mlp, "gate"):
                layer.mlp.gate.e_score_correction_bias.zero_()
    for name, p in net.named_parameters():
        keep32 = name.endswith("mlp.gate.weight") or "weights_proj" in name
        p.data = p.data.to(torch.float32 if keep32 else dtype)
    net.inv_freq = inv_frequencies(cfg.rope(), cfg.qk_rope_head_dim)[0].to(device)
    return net.eval()


def set_indexer(net: DeepseekV32, mode: str) -> None:
    """Switch the reference path and the engine's cache format between exact and FP8 scoring."""
    net.opts = net.opts.model_copy(update={"indexer": mode})
    for layer in net.model.layers:
        layer.self_attn.indexer_fp8 = mode == "fp8"


class Clock:
    def __init__(self, device: torch.device):
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def __enter__(self):
        self.sync()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.sync()
        self.s = time.perf_counter() - self.t0


def peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_gb(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated() / 1e9 if device.type == "cuda" else float("nan")


def tokens(n: int, vocab: int, seed: int) -> list[int]:
    return torch.randint(2, vocab, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


@torch.no_grad()
def check(net, engine_kw, n: int, steps: int, device) -> None:
    """Engine vs reference path at n tokens, teacher-forced over `steps` decode steps.

    Both run in bf16; the yardstick is the reference path in float32 on the same (bf16-valued)
    weights: with random weights the logits are nearly flat, so bf16 rounding alone flips many
    top-1 choices, and the question is whether the engine is as close to float32 as the bf16
    reference path is.
    """
    import copy

    seqtoks = tokens(n + steps, net.cfg.vocab_size, 1)
    ids = torch.tensor([seqtoks], device=device)
    net32 = copy.deepcopy(net).float() if device.type == "cuda" else None

    def compare(name: str, got: torch.Tensor, ref: torch.Tensor, mode: str) -> None:
        rel = (got - ref).abs().amax(-1) / ref.abs().amax(-1)
        agree = float((got.argmax(-1) == ref.argmax(-1)).float().mean())
        record(
            "check",
            pair=name,
            indexer=mode,
            context=n,
            steps=steps,
            top1_agreement=round(agree, 4),
            rel_err_median=round(float(rel.median()), 5),
            rel_err_max=round(float(rel.max()), 5),
        )

    for mode in ("exact", "fp8"):
        set_indexer(net, mode)
        ref = net(ids)[0, n - 1 : n + steps - 1].float()  # (steps, V)
        ref32 = None
        if net32 is not None:
            set_indexer(net32, mode)
            ref32 = net32(ids)[0, n - 1 : n + steps - 1].float()
        engine = Engine(net, **engine_kw)
        seq = engine.start(seqtoks[:n], SamplingParams(max_new_tokens=steps))
        got = [engine.prefill(seq)]
        for p in range(n, n + steps - 1):
            got.append(engine.decode([seq], [seqtoks[p]])[0])
        got = torch.stack(got).float()
        compare("engine bf16 vs reference bf16", got, ref, mode)
        if ref32 is not None:
            compare("engine bf16 vs reference fp32", got, ref32, mode)
            compare("reference bf16 vs reference fp32 (noise floor)", ref, ref32, mode)
        engine.release(seq)
        del engine, ref, ref32
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    del net32
    gc.collect()
    set_indexer(net, "fp8")


@torch.no_grad()
def micro(net, device) -> None:
    """What a decode step spends: one MoE layer for 1 and 8 tokens (grouped GEMM vs the batched
    fallback) and the LM head."""
    from model.engine.moe import GroupedExperts

    layer = next(lay for lay in net.model.layers if hasattr(lay.mlp, "gate"))
    experts = GroupedExperts(layer.mlp)
    for n in (1, 8, 4096):
        x = torch.randn(
            n, net.cfg.hidden_size, device=device, dtype=net.model.embed_tokens.weight.dtype
        )
        for grouped in (True, False):
            experts.use_grouped_mm = grouped
            experts(x)
            times = []
            for _ in range(20):
                with Clock(device) as c:
                    experts(x)
                times.append(c.s)
            record(
                "micro",
                what=f"MoE layer, {n} tokens, {'grouped_mm' if grouped else 'batched fallback'}",
                ms=round(statistics.median(times) * 1e3, 3),
            )
    x = torch.randn(
        1, net.cfg.hidden_size, device=device, dtype=net.model.embed_tokens.weight.dtype
    )
    times = []
    for _ in range(20):
        with Clock(device) as c:
            net.lm_head(x)
        times.append(c.s)
    record("micro", what="LM head, 1 token", ms=round(statistics.median(times) * 1e3, 3))
    del experts
    gc.collect()


@torch.no_grad()
def reference_row(net, n: int, device, decode_steps: int) -> None:
    """The reference path (dense masks, loop over experts) at n tokens."""
    ids = torch.tensor([tokens(n, net.cfg.vocab_size, 2)], device=device)
    peak_reset(device)
    try:
        cache = net.new_cache(1, n + decode_steps + 1)
        with Clock(device) as c:
            logits = net(ids, start=0, cache=cache)[:, -1]
        tok = logits.argmax(-1)
        times = []
        for s in range(decode_steps):
            with Clock(device) as d:
                tok = decode_step(net, tok, n + s, cache).argmax(-1)
            times.append(d.s)
        record(
            "table",
            path="reference",
            context=n,
            prefill_s=round(c.s, 3),
            prefill_tok_s=round(n / c.s),
            decode_ms_b1=round(statistics.median(times) * 1e3, 2),
            decode_ms_b8=None,
            peak_gb=round(peak_gb(device), 1),
        )
    except torch.OutOfMemoryError as exc:
        record(
            "table",
            path="reference",
            context=n,
            error=f"out of memory: {str(exc).splitlines()[0][:90]}",
        )
    finally:
        cache = None
        if device.type == "cuda":
            torch.cuda.empty_cache()


@torch.no_grad()
def warm(engine: Engine, device, sizes: list[int]) -> None:
    """Compile every kernel variant before timing: a prompt long enough for the indexer's sampled
    top-k path (rows past 16 x topk), then decode at batch 1 and 8."""
    n = min(max(sizes), 40960)
    with Clock(device) as c:
        for _ in engine.generate(
            [tokens(n, engine.cfg.vocab_size, 99)], SamplingParams(max_new_tokens=4)
        ):
            pass
        for _ in engine.generate(
            [tokens(300, engine.cfg.vocab_size, 98 + i) for i in range(8)],
            SamplingParams(max_new_tokens=4),
        ):
            pass
    engine.pool.clear_cache()
    record("table", path="warm-up (not timed)", context=n, seconds=round(c.s, 1))


@torch.no_grad()
def engine_row(engine: Engine, n: int, device, decode_steps: int, batch: int) -> None:
    vocab = engine.cfg.vocab_size
    prompt = tokens(n, vocab, 3 + n)
    peak_reset(device)
    with Clock(device) as c:
        seq = engine.start(prompt, SamplingParams(max_new_tokens=decode_steps + 8))
        logits = engine.prefill(seq)
    tok = int(logits.argmax())
    times = []
    for _ in range(decode_steps):
        with Clock(device) as d:
            tok = int(engine.decode([seq], [tok])[0].argmax())
        times.append(d.s)
    b1 = statistics.median(times[2:] or times)
    # batch: sequences sharing this prompt's blocks plus one distinct token each (the attention still
    # reads each sequence's own top-k rows; only the prefill is shared)
    seqs = [
        engine.start(prompt + [5 + i], SamplingParams(max_new_tokens=decode_steps + 8))
        for i in range(batch)
    ]
    for s in seqs:
        engine.prefill(s)
    toks = [7] * batch
    btimes = []
    for _ in range(decode_steps):
        with Clock(device) as d:
            toks = engine.decode(seqs, toks).argmax(-1).tolist()
        btimes.append(d.s)
    b8 = statistics.median(btimes[2:] or btimes)
    for s in [seq, *seqs]:
        engine.release(s)
    record(
        "table",
        path=f"engine ({engine.backend.name})",
        context=n,
        prefill_s=round(c.s, 3),
        prefill_tok_s=round(n / c.s),
        decode_ms_b1=round(b1 * 1e3, 2),
        decode_ms_b8=round(b8 * 1e3, 2),
        peak_gb=round(peak_gb(device), 1),
    )


@torch.no_grad()
def replay(
    engine: Engine,
    device,
    start: int,
    end: int,
    add: int,
    decode: int,
    budget_s: float,
    no_reuse_every: int,
) -> None:
    """An agent conversation growing from `start` to `end` tokens: time to first token per step."""
    vocab = engine.cfg.vocab_size
    convo = tokens(start, vocab, 11)
    t_begin = time.perf_counter()
    step = 0
    while len(convo) <= end and time.perf_counter() - t_begin < budget_s:
        with Clock(device) as c:
            seqs: list = []
            gen = engine.generate([convo], SamplingParams(max_new_tokens=decode), sequences=seqs)
            first = next(gen)[1]
        out = [first] + [t for _, t in gen]
        row = {
            "step": step,
            "context": len(convo),
            "reused": seqs[0].reused,
            "prefilled": seqs[0].prefilled,
            "ttft_s": round(c.s, 3),
        }
        if no_reuse_every and step % no_reuse_every == 0:
            engine.prefix_cache = False
            with Clock(device) as c2:
                s = engine.start(convo, SamplingParams(max_new_tokens=1))
                engine.prefill(s)
            engine.release(s)
            engine.prefix_cache = True
            row["ttft_no_reuse_s"] = round(c2.s, 3)
        record("replay", **row)
        convo = convo + out + tokens(add, vocab, 100 + step)
        step += 1


@torch.no_grad()
def reload(engine: Engine, device, n: int, root: Path) -> None:
    """Persisted KV of an n-token prefix: reload + prefill of the last block vs a full re-prefill."""
    prompt = tokens(n, engine.cfg.vocab_size, 21 + n)
    store = KVStore(engine, root=root, cap_bytes=1 << 40)
    seq = engine.start(prompt + [9], SamplingParams(max_new_tokens=1))
    with Clock(device) as full:
        engine.prefill(seq)
    engine.release(seq)
    with Clock(device) as sv:
        path = store.save(prompt + [9])
    engine.pool.clear_cache()
    with Clock(device) as ld:
        restored = store.load(prompt + [9])
        seq = engine.start(prompt + [9], SamplingParams(max_new_tokens=1))
        engine.prefill(seq)
    engine.release(seq)
    engine.pool.clear_cache()
    record(
        "reload",
        context=n,
        file_gb=round(path.stat().st_size / 1e9, 2),
        save_s=round(sv.s, 3),
        restored=restored,
        reprefill_s=round(full.s, 3),
        reload_and_suffix_s=round(ld.s, 3),
        speedup=round(full.s / ld.s, 1),
    )


def serve(net, kw, device, prompt_len: int, decode: int, counts: tuple[int, ...]) -> None:
    """N concurrent requests through the batching `Server` against the same requests submitted
    one after another (each waits for the previous one's end), with distinct prompts and the
    prefix cache emptied between the two runs, so both prefill everything. Tokens/s are decoded
    tokens over the wall time, prefills included."""
    from model.engine.server import Server

    vocab = net.cfg.vocab_size
    params = SamplingParams(max_new_tokens=decode)
    engine = Engine(net, **{**kw, "max_cached_tokens": max(counts) * (prompt_len + decode) + 4096})
    server = Server(engine)
    try:
        # warm-up (not timed): compile the kernels and capture the decode graphs of every bucket
        # up to the largest batch at this context's block-table width
        for r in [
            server.submit(tokens(prompt_len, vocab, 500 + i), SamplingParams(max_new_tokens=16))
            for i in range(max(counts))
        ]:
            r.result()
        table = []
        for n in counts:
            prompts = [tokens(prompt_len, vocab, 600 + 10 * n + i) for i in range(n)]
            row = {"requests": n, "prompt": prompt_len, "decode": decode}
            for mode in ("sequential", "concurrent"):
                server.call(engine.pool.clear_cache).result()
                steps, rows = server.decode_steps, server.decode_rows
                with Clock(device) as c:
                    if mode == "sequential":
                        made = sum(len(server.submit(p, params).result()) for p in prompts)
                    else:
                        reqs = [server.submit(p, params) for p in prompts]
                        made = sum(len(r.result()) for r in reqs)
                row[f"{mode}_s"] = round(c.s, 3)
                row[f"{mode}_tok_s"] = round(made / c.s, 1)
                row[f"{mode}_mean_batch"] = round(
                    (server.decode_rows - rows) / max(1, server.decode_steps - steps), 2
                )
            row["speedup"] = round(row["sequential_s"] / row["concurrent_s"], 2)
            record("serve", **row)
            table.append(row)
    finally:
        server.close()
    print(
        "\n| requests | sequential s | sequential tok/s | concurrent s | concurrent tok/s | mean batch | speedup |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in table:
        print(
            f"| {r['requests']} | {r['sequential_s']} | {r['sequential_tok_s']} | {r['concurrent_s']} | "
            f"{r['concurrent_tok_s']} | {r['concurrent_mean_batch']} | {r['speedup']} |",
            flush=True,
        )
    del server, engine
    gc.collect()


@torch.no_grad()
def profile(net, kw, device) -> None:
    """Where a 4K decode step goes: graph replay alone vs the whole `Engine.decode` call, and the
    CUDA kernels of eager steps by total time."""
    engine = Engine(net, **kw)
    seq = engine.start(tokens(4096, net.cfg.vocab_size, 5), SamplingParams(max_new_tokens=64))
    tok = int(engine.prefill(seq).argmax())
    for _ in range(3):
        tok = int(engine.decode([seq], [tok])[0].argmax())
    graph = None
    if engine.graphs and engine.graphs.graphs:
        graph = next(iter(engine.graphs.graphs.values())).graph
    if graph is not None:
        times = []
        for _ in range(20):
            with Clock(device) as c:
                graph.replay()
            times.append(c.s)
        record(
            "profile",
            what="graph replay alone (B1, 4K)",
            ms=round(statistics.median(times) * 1e3, 3),
        )
    times = []
    for _ in range(20):
        with Clock(device) as c:
            tok = int(engine.decode([seq], [tok])[0].argmax())
        times.append(c.s)
    record(
        "profile",
        what="Engine.decode + argmax + read back (B1, 4K)",
        ms=round(statistics.median(times) * 1e3, 3),
    )
    graphs, engine.graphs = engine.graphs, None
    # The graphs' staged inputs against eager steps: three sequences of different lengths.
    eager = Engine(net, **{**kw, "cuda_graphs": False})
    diffs = []
    pair = []
    for e in (engine, eager):
        e.graphs = graphs if e is engine else None
        ss = [e.start(tokens(n, net.cfg.vocab_size, 40 + n)) for n in (100, 3000, 5000)]
        for s in ss:
            e.prefill(s)
        pair.append([e.decode(ss, [11, 12, 13]) for _ in range(4)])
        for s in ss:
            e.release(s)
    for a, b in zip(*pair):
        diffs.append(float((a.float() - b.float()).abs().max() / b.float().abs().max()))
    record("profile", what="graph vs eager decode, B3, max rel diff over 4 steps", value=max(diffs))
    engine.graphs = None
    del eager
    gc.collect()
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            tok = int(engine.decode([seq], [tok])[0].argmax())
    table = prof.key_averages().table(
        sort_by="cuda_time_total", row_limit=25, max_name_column_width=70
    )
    print(table, flush=True)
    engine.graphs = graphs
    engine.release(seq)


@torch.no_grad()
def prefill_profile(net, kw, device, n: int, chunks: list[int]) -> None:
    """Where a long prefill goes: the same n-token prompt prefilled with several chunk sizes
    (each on a fresh cache), prefill attention gathered against paged, then the CUDA kernels of
    the last 4 chunks by total time."""

    def timed(seed: int, attention: str | None = None, **engine_kw) -> float:
        engine = Engine(net, **{**kw, "max_cached_tokens": n + 4096, **engine_kw})
        if attention is not None:
            engine.backend.prefill_attention = attention
        seq = engine.start(tokens(n, net.cfg.vocab_size, seed), SamplingParams(max_new_tokens=1))
        peak_reset(device)
        with Clock(device) as c:
            engine.prefill(seq)
        engine.release(seq)
        del engine
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return c.s

    for chunk in chunks:
        s = timed(17, prefill_chunk=chunk)
        record(
            "prefill_profile",
            context=n,
            chunk=chunk,
            prefill_s=round(s, 3),
            tok_s=round(n / s),
            peak_gb=round(peak_gb(device), 1),
        )
    if device.type == "cuda":
        # prefill attention over rows gathered per chunk, or reading the paged cache in place
        for mode in ("gathered", "gathered", "paged"):  # the first one compiles the kernel
            record(
                "prefill_profile", context=n, attention=mode, prefill_s=round(timed(19, mode), 3)
            )
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    chunk = chunks[0]
    engine = Engine(net, **{**kw, "prefill_chunk": chunk, "max_cached_tokens": n + 4096})
    seq = engine.start(tokens(n, net.cfg.vocab_size, 18), SamplingParams(max_new_tokens=1))
    seq_tokens = seq.tokens
    seq.tokens = seq_tokens[: n - 4 * chunk]
    engine.prefill(seq)  # all but the last 4 chunks, unprofiled
    seq.tokens = seq_tokens
    acts = [ProfilerActivity.CUDA] if device.type == "cuda" else [ProfilerActivity.CPU]
    with torch_profile(activities=acts) as prof:
        engine.prefill(seq)
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    print(f"kernels of the last 4 chunks of a {n}-token prefill (chunk {chunk}):", flush=True)
    print(prof.key_averages().table(sort_by=sort, row_limit=30, max_name_column_width=70))
    engine.release(seq)


def guarded(section: str, fn, **where) -> None:
    """Run one measurement; an error (out of memory included) becomes a row, not the end of the run."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - a benchmark reports every failure and goes on
        traceback.print_exc()
        record(
            section,
            **where,
            error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}",
        )
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--tiny", action="store_true", help="toy sizes on the CPU (a dry run of every section)"
    )
    ap.add_argument("--sections", default="check,micro,table,reload,serve,replay")
    ap.add_argument("--sizes", default="4096,16384,32768,65536,131072")
    ap.add_argument("--budget", type=float, default=540.0, help="seconds for the whole run")
    ap.add_argument("--decode-steps", type=int, default=32)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    device = torch.device("cpu" if args.tiny or not torch.cuda.is_available() else "cuda")
    if device.type == "cpu":
        torch.set_num_threads(1)  # tiny tensors: thread hand-offs cost more than they save
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    t0 = time.perf_counter()
    left = lambda: args.budget - (time.perf_counter() - t0)
    sections = args.sections.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.tiny:
        sizes = [s // 256 for s in sizes]
    net = build(args.tiny, device, dtype)
    say(
        f"device {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}; torch {torch.__version__}; "
        f"params {sum(p.numel() for p in net.parameters()) / 1e9:.2f} B; weights "
        f"{sum(p.numel() * p.element_size() for p in net.parameters()) / 1e9:.1f} GB"
    )
    kw = {
        "block_size": 64,
        "checkpoint_id": "stand-in",
        "prefill_chunk": 4096 if not args.tiny else 16,
        "max_cached_tokens": (640 * 1024 if not args.tiny else 4096),
    }
    check_n, check_steps = (4096, 256) if not args.tiny else (40, 8)
    # the table's pool: the longest context, plus one block each for the batch of 8 and slack
    table_tokens = max(sizes) + 64 * 64
    if "profile" in sections and left() > 60:
        guarded("profile", lambda: profile(net, {**kw, "max_cached_tokens": 65536}, device))
    if "prefill_profile" in sections and left() > 60:
        n = max(sizes)
        chunks = [4096, 4096, 8192] if not args.tiny else [16, 32]
        guarded("prefill_profile", lambda: prefill_profile(net, kw, device, n, chunks))
    if "micro" in sections and left() > 60:
        guarded("micro", lambda: micro(net, device))
    if "check" in sections and left() > 60:
        guarded("check", lambda: check(net, kw, check_n, check_steps, device))
    set_indexer(net, "fp8")
    if "table" in sections:
        if left() > 60:
            reference_row(net, sizes[0], device, 16)
        engine = Engine(net, **{**kw, "max_cached_tokens": table_tokens})
        guarded("table", lambda: warm(engine, device, sizes), context="warm-up")
        for n in sizes:
            if left() < 45 + n / 4096 * 1.5:
                record("table", path="engine", context=n, error="skipped: time guard")
                continue
            guarded(
                "table", lambda n=n: engine_row(engine, n, device, args.decode_steps, 8), context=n
            )
        del engine
        gc.collect()
    if "reload" in sections:
        gc.collect()
        engine = Engine(net, **kw)
        with tempfile.TemporaryDirectory() as tmp:
            for n in (32768, 131072) if not args.tiny else (128, 512):
                if left() > 30 + n / 4096:
                    guarded("reload", lambda n=n: reload(engine, device, n, Path(tmp)), context=n)
        del engine
        gc.collect()
    if "serve" in sections and left() > 60:
        gc.collect()
        prompt_len, decode = (4096, 128) if not args.tiny else (64, 16)
        guarded("serve", lambda: serve(net, kw, device, prompt_len, decode, (1, 4, 8)))
    if "replay" in sections and left() > 60:
        gc.collect()
        engine = Engine(net, **kw)
        if args.tiny:
            guarded("replay", lambda: replay(engine, device, 128, 512, 64, 8, left() - 20, 3))
        else:
            guarded(
                "replay", lambda: replay(engine, device, 8192, 131072, 4096, 256, left() - 20, 6)
            )
    out = os.environ.get("OUT")
    if out:
        Path(out, "engine_bench.json").write_text(json.dumps(ROWS, indent=1))
    print("\n| section | row |\n| --- | --- |")
    for r in ROWS:
        print(
            f"| {r['section']} | "
            + ", ".join(f"{k}={v}" for k, v in r.items() if k != "section")
            + " |"
        )
    say(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
