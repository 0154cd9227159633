"""Full-size correctness checks of every kernel on a CUDA GPU (run on the H200 before bench.py).

    python -m kernels.gpu_check [--only topk,mla,indexer,moe]

Sizes are DeepSeek-V3.2's: 128 heads of 576 (512 latent + 64 rope), indexer 64 heads of 128
in FP8, top-k 2048, caches up to 131072 tokens; 256 routed experts of D 7168, I 2048, 8 per token. Outputs are poisoned before each run; each
check compares a random subset of rows with the plain-PyTorch reference (the reference on
every row would need tens of gigabytes) and prints one line. Exit status 1 if any failed.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback

import torch

from kernels import (
    fp8_grouped_gemm,
    lightning_indexer,
    lightning_indexer_paged,
    radix_topk,
    sparse_mla,
    sparse_mla_decode,
)
from kernels import quantize_rows as fp8_rows
from kernels.indexer import naive as naive_indexer
from kernels.mla import naive as naive_mla
from kernels.moe import naive as naive_moe
from kernels.testing import fp8_experts, poison_, rel_err, routed_pairs, topk_mismatch

FP8 = torch.float8_e4m3fn
# bf16 outputs (2^-8 rounding) and bf16 probabilities in the value product: see tests/kernels.
OUT_TOL, LSE_TOL = 1e-2, 1e-4
# Hopper's FP8 tensor-core accumulation keeps fewer mantissa bits than float32 (DeepSeek-V3
# reports about 14), so near-ties within ~1e-3 of the row's largest score may swap.
FP8_RTOL, BF16_RTOL = 2e-3, 1e-4

RESULTS: list[tuple[str, bool, str]] = []


def report(name: str, ok: bool, detail: str) -> None:
    RESULTS.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)


def checked(fn):
    def run(*args, **kwargs):
        t0 = time.time()
        try:
            fn(*args, **kwargs)
        except Exception:  # noqa: BLE001 - a crash in one check must not hide the others' results
            report(fn.__name__, False, "raised:\n" + traceback.format_exc(limit=4))
        print(f"      ({fn.__name__} took {time.time() - t0:.1f} s)", flush=True)

    return run


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row FP8 e4m3 with a float32 scale: x ~ q * scale."""
    amax = x.float().abs().amax(-1, keepdim=True).clamp_min(1e-6)
    scale = amax / 448.0
    return (x.float() / scale).to(FP8), scale.squeeze(-1)


@checked
def check_sparse_mla(T=4096, N=131072, H=128, topk=2048, config=None):
    dev = "cuda"
    q = torch.randn(T, H, 576, device=dev, dtype=torch.bfloat16)
    kv = torch.randn(N, 576, device=dev, dtype=torch.bfloat16)
    idx = torch.randint(0, N, (T, topk), device=dev, dtype=torch.int32)
    idx[torch.rand(T, topk, device=dev) < 0.1] = -1
    idx[7] = -1
    out = poison_(torch.empty(T, H, 512, device=dev, dtype=torch.bfloat16))
    lse = poison_(torch.empty(T, H, device=dev))
    sparse_mla(q, kv, idx, 576**-0.5, out=out, lse=lse, config=config)
    torch.cuda.synchronize()
    rows = torch.cat([torch.tensor([7], device=dev), torch.randperm(T, device=dev)[:31]])
    ref_out, ref_lse = naive_mla.sparse_mla(q[rows], kv, idx[rows], 576**-0.5)
    e_out, e_lse = rel_err(out[rows], ref_out.float()), rel_err(lse[rows], ref_lse)
    unwritten = int(out.isnan().sum() + lse.isnan().sum())
    report(
        f"sparse_mla prefill 4096 x 128K, H128, topk 2048, config {config}",
        e_out < OUT_TOL and e_lse < LSE_TOL and unwritten == 0,
        f"out rel err {e_out:.2e}, lse rel err {e_lse:.2e}, unwritten {unwritten}",
    )


@checked
def check_sparse_mla_decode(
    B=64, max_len=131072, H=128, topk=2048, page=64, splits=None, config=None
):
    dev = "cuda"
    max_blocks = max_len // page
    num_blocks = B * max_blocks
    cache = torch.randn(num_blocks, page, 576, device=dev, dtype=torch.bfloat16)
    block_table = torch.randperm(num_blocks, device=dev, dtype=torch.int32).view(B, max_blocks)
    seq_lens = torch.randint(topk // 2, max_len + 1, (B,), device=dev, dtype=torch.int32)
    seq_lens[0] = max_len
    q = torch.randn(B, H, 576, device=dev, dtype=torch.bfloat16)
    idx = (torch.rand(B, topk, device=dev) * seq_lens[:, None]).to(torch.int32)
    idx[:, -5:] = -1
    out = poison_(torch.empty(B, H, 512, device=dev, dtype=torch.bfloat16))
    lse = poison_(torch.empty(B, H, device=dev))
    sparse_mla_decode(
        q,
        cache,
        block_table,
        seq_lens,
        idx,
        576**-0.5,
        num_splits=splits,
        out=out,
        lse=lse,
        config=config,
    )
    torch.cuda.synchronize()
    rows = list(range(min(B, 6)))
    ref_out, ref_lse = naive_mla.sparse_mla_decode(
        q[rows], cache, block_table[rows], seq_lens[rows], idx[rows], 576**-0.5
    )
    e_out, e_lse = rel_err(out[rows], ref_out.float()), rel_err(lse[rows], ref_lse)
    unwritten = int(out.isnan().sum() + lse.isnan().sum())
    report(
        f"sparse_mla_decode B{B} x {max_len}, page {page}, splits {splits}, config {config}",
        e_out < OUT_TOL and e_lse < LSE_TOL and unwritten == 0,
        f"out rel err {e_out:.2e}, lse rel err {e_lse:.2e}, unwritten {unwritten}",
    )


@checked
def check_indexer(T=32768, N=32768, Hi=64, Di=128, topk=2048, dtype=FP8):
    dev = "cuda"
    qf = torch.randn(T, Hi, Di, device=dev)
    kf = torch.randn(N, Di, device=dev)
    if dtype == FP8:
        q, q_scale = quantize_rows(qf)  # (T, Hi, Di), (T, Hi)
        k, k_scale = quantize_rows(kf)  # (N, Di), (N,)
        weights = torch.randn(T, Hi, device=dev) * q_scale * (Di * Hi) ** -0.5
        rtol = FP8_RTOL
    else:
        q, k, k_scale = qf.to(dtype), kf.to(dtype), None
        weights = torch.randn(T, Hi, device=dev) * (Di * Hi) ** -0.5
        rtol = BF16_RTOL
    q_pos = torch.arange(T, device=dev) + (N - T)
    out = poison_(torch.empty(T, topk, dtype=torch.int32, device=dev))
    lightning_indexer(q, k, weights, topk, q_pos, k_scale, out=out)
    torch.cuda.synchronize()
    rows = torch.cat(
        [
            torch.tensor([0, 1, topk - 1, topk, topk + 1, T - 1], device=dev),
            torch.randint(0, T, (26,), device=dev),
        ]
    )
    scores = naive_indexer.index_scores(q[rows], k, weights[rows], k_scale)  # (32, N)
    msg = topk_mismatch(out[rows], scores, (q_pos[rows] + 1).clamp(0, N), topk, rtol)
    report(f"lightning_indexer {T} x {N}, {str(dtype)[6:]}", msg is None, msg or "top-k sets match")


@checked
def check_paged_indexer(B=4, max_len=131072, Hi=64, Di=128, topk=2048, page=64):
    dev = "cuda"
    max_blocks = max_len // page
    num_blocks = B * max_blocks
    k_cache, k_scale = quantize_rows(torch.randn(num_blocks, page, Di, device=dev))
    block_table = torch.randperm(num_blocks, device=dev, dtype=torch.int32).view(B, max_blocks)
    seq_lens = torch.tensor([max_len, 1000, 2049, 77777], device=dev, dtype=torch.int32)[:B]
    q, q_scale = quantize_rows(torch.randn(B, Hi, Di, device=dev))
    weights = torch.randn(B, Hi, device=dev) * q_scale
    out = poison_(torch.empty(B, topk, dtype=torch.int32, device=dev))
    lightning_indexer_paged(q, k_cache, weights, topk, block_table, seq_lens, k_scale, out=out)
    torch.cuda.synchronize()
    msg = None
    for b in range(B):
        n = int(seq_lens[b])
        keys = naive_indexer.paged_keys(k_cache, block_table, n, b)
        scales = naive_indexer.paged_keys(k_scale, block_table, n, b)
        scores = naive_indexer.index_scores(q[b : b + 1], keys, weights[b : b + 1], scales)
        msg = msg or topk_mismatch(out[b : b + 1], scores, seq_lens[b : b + 1], topk, FP8_RTOL)
    report(
        f"lightning_indexer_paged B{B} up to {max_len}, FP8", msg is None, msg or "top-k sets match"
    )


@checked
def check_radix_topk(R=3, L=131072, topk=2048):
    dev = "cuda"
    scores = torch.randn(R, L, device=dev)
    scores[1] = scores[1].mul(4).round()  # heavy ties
    lengths = torch.tensor([L, L - 5, 3000], device=dev, dtype=torch.int32)
    for splits in (1, 64):
        out = poison_(torch.empty(R, topk, dtype=torch.int32, device=dev))
        radix_topk(scores, lengths, topk, out=out, splits=splits)
        msg = topk_mismatch(out, scores, lengths, topk, 0.0)
        report(f"radix_topk {R} x {L}, splits {splits}", msg is None, msg or "exact")


def moe_weights(E=256, D=7168, I=2048, dev="cuda"):
    """DeepSeek-V3.2's routed experts in FP8: gate/up (E, 2I, D) and down (E, D, I), 11 GB."""
    return fp8_experts(E, 2 * I, D, dev, seed=1), fp8_experts(E, D, I, dev, seed=2)


def expert_errors(x, xs, w, ws, ends, out, experts: list[int]) -> float:
    """Largest rel. error over the given experts' rows against the dequantised float32 product."""
    worst, start = 0.0, torch.cat((ends.new_zeros(1), ends)).tolist()
    for e in experts:
        r0, r1 = start[e], start[e + 1]
        ref = naive_moe.fp8_grouped_gemm(
            x[r0:r1], xs[r0:r1], w[e : e + 1], ws[e : e + 1], ends.new_tensor([r1 - r0])
        )
        worst = max(worst, rel_err(out[r0:r1], ref.float()))
    return worst


def moe_forward(x, weights, ends, h=None, y=None):
    """Both expert projections as the engine runs them: quantise, GEMM, SwiGLU + quantise, GEMM."""
    (w13, s13), (w2, s2) = weights
    xq, xs = fp8_rows(x)
    h = fp8_grouped_gemm(xq, xs, w13, s13, ends, out=h)  # (P, 2I)
    aq, a_s = fp8_rows(h, swiglu=True)
    return xq, xs, h, aq, a_s, fp8_grouped_gemm(aq, a_s, w2, s2, ends, out=y)  # (P, D)


@checked
def check_moe(weights, tokens: int, topk=8, dev="cuda"):
    (w13, s13), (w2, s2) = weights
    E, _, D = w13.shape
    P = tokens * topk
    _, ends = routed_pairs(tokens, E, topk, dev, seed=tokens)
    x = torch.randn(P, D, device=dev, dtype=torch.bfloat16)
    h = poison_(torch.empty(P, w13.shape[1], device=dev, dtype=torch.bfloat16))
    y = poison_(torch.empty(P, D, device=dev, dtype=torch.bfloat16))
    xq, xs, h, aq, a_s, y = moe_forward(x, weights, ends, h, y)
    if dev == "cuda":
        torch.cuda.synchronize()
    # Quantisers against the reference: x exactly; the SwiGLU input may differ by an e4m3 rounding
    # where silu's float32 value lands on a tie (the kernel computes it in another order).
    rq, rs = naive_moe.quantize_rows(x)
    x_exact = torch.equal(rq.view(torch.uint8), xq.view(torch.uint8)) and torch.equal(rs, xs)
    rq, rs = naive_moe.quantize_rows(h, swiglu=True)
    swiglu_off = float((rq.view(torch.uint8) != aq.view(torch.uint8)).float().mean())
    swiglu_off += float((rs != a_s).float().mean())
    counts = torch.diff(ends, prepend=ends.new_zeros(1))
    used = counts.nonzero()[:, 0].tolist()
    picked = sorted(
        {used[0], used[-1], int(counts.argmax())} | set(used[:: max(1, len(used) // 5)])
    )
    e13 = expert_errors(xq, xs, w13, s13, ends, h, picked)
    e2 = expert_errors(aq, a_s, w2, s2, ends, y, picked)
    unwritten = int(h.isnan().sum() + y.isnan().sum())
    report(
        f"fp8_grouped_gemm MoE {tokens} tokens x top-{topk} = {P} pairs, {len(used)} experts used",
        max(e13, e2) < OUT_TOL and unwritten == 0 and x_exact and swiglu_off < 1e-3,
        f"gate/up rel err {e13:.2e}, down {e2:.2e} (experts {picked[:8]}), unwritten {unwritten}, "
        f"x quantised exactly {x_exact}, SwiGLU e4m3 values off by a rounding {swiglu_off:.1e}",
    )


@checked
def check_moe_graph(weights, tokens=8, topk=8):
    """The MoE pipeline captured in a CUDA graph (no host sync on group sizes) follows new routing."""
    (w13, _), _ = weights
    E, _, D = w13.shape
    P = tokens * topk
    x = torch.randn(P, D, device="cuda", dtype=torch.bfloat16)
    ends = routed_pairs(tokens, E, topk, "cuda", seed=1)[1].clone()
    moe_forward(x, weights, ends)  # compile outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = moe_forward(x, weights, ends)[-1]
    worst = 0.0
    for seed in (2, 3):
        ends.copy_(routed_pairs(tokens, E, topk, "cuda", seed=seed)[1])
        graph.replay()
        worst = max(worst, rel_err(y, moe_forward(x, weights, ends)[-1].float()))
    report(
        f"fp8 MoE pipeline in a CUDA graph, {P} pairs, replayed on new routing",
        worst < 1e-6,
        f"rel err {worst:.1e}",
    )


def check_moe_all() -> None:
    weights = moe_weights()
    for tokens in (1, 8, 64, 512, 4096):  # 8 .. 32768 pairs
        check_moe(weights, tokens)
    check_moe_graph(weights)


GROUPS = {
    "topk": [check_radix_topk],
    "mla": [
        check_sparse_mla,
        lambda: check_sparse_mla(config={"LAZY": True}),
        lambda: check_sparse_mla_decode(B=64),
        lambda: check_sparse_mla_decode(B=64, config={"LAZY": True}),
        lambda: check_sparse_mla_decode(B=1, splits=None),
        lambda: check_sparse_mla_decode(B=3, page=16, splits=7),
    ],
    "indexer": [
        check_indexer,
        lambda: check_indexer(T=4096, N=8192, dtype=torch.bfloat16),
        check_paged_indexer,
    ],
    "moe": [check_moe_all],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(GROUPS), help="comma-separated groups to run")
    groups = parser.parse_args().only.split(",")
    unknown = set(groups) - set(GROUPS)
    if unknown:
        parser.error(f"unknown groups {sorted(unknown)}; choose from {list(GROUPS)}")
    print(f"GPU: {torch.cuda.get_device_name()}  torch {torch.__version__}", flush=True)
    for group in groups:
        for check in GROUPS[group]:
            check()
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(
        f"\n{len(RESULTS) - len(failed)}/{len(RESULTS)} checks passed"
        + (f"; FAILED: {failed}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
