"""Full-size correctness checks of every kernel on a CUDA GPU (run on the H200 before bench.py).

    python -m kernels.gpu_check

Sizes are DeepSeek-V3.2's: 128 heads of 576 (512 latent + 64 rope), indexer 64 heads of 128
in FP8, top-k 2048, caches up to 131072 tokens. Outputs are poisoned before each run; each
check compares a random subset of rows with the plain-PyTorch reference (the reference on
every row would need tens of gigabytes) and prints one line. Exit status 1 if any failed.
"""

from __future__ import annotations

import sys
import time
import traceback

import torch

from kernels import (
    lightning_indexer,
    lightning_indexer_paged,
    radix_topk,
    sparse_mla,
    sparse_mla_decode,
)
from kernels.indexer import naive as naive_indexer
from kernels.mla import naive as naive_mla
from kernels.testing import poison_, rel_err, topk_mismatch

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
        except Exception:  # a crash in one check must not hide the others' results
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


def main() -> int:
    print(f"GPU: {torch.cuda.get_device_name()}  torch {torch.__version__}", flush=True)
    check_radix_topk()
    check_sparse_mla()
    check_sparse_mla(config={"LAZY": True})
    check_sparse_mla_decode(B=64)
    check_sparse_mla_decode(B=64, config={"LAZY": True})
    check_sparse_mla_decode(B=1, splits=None)
    check_sparse_mla_decode(B=3, page=16, splits=7)
    check_indexer()
    check_indexer(T=4096, N=8192, dtype=torch.bfloat16)
    check_paged_indexer()
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(
        f"\n{len(RESULTS) - len(failed)}/{len(RESULTS)} checks passed"
        + (f"; FAILED: {failed}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
