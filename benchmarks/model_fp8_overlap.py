"""How much the FP8 lightning-indexer top-k overlaps the exact (float32) one.

    python benchmarks/model_fp8_overlap.py [--lengths 1024 4096] [--topk 128 512 2048]

Inputs are random at the released indexer shape (64 heads x 128 dims): Gaussian queries, keys with
a shared mean direction (as LayerNorm'd keys have) and per-head weights. Scores are computed over
a causal prefill in query chunks. Baselines in the same run: bf16 scoring (exact math, bf16
inputs) and a random selection (chance level). Overlap = mean over queries of |A & B| / |A|,
counting only queries with more than k visible keys (the others keep everything in every mode).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.indexer import causal_key_mask, index_scores, select_topk


def overlaps(
    t: int, ks: list[int], heads: int, dim: int, seed: int, chunk: int = 256
) -> dict[str, list[float]]:
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(1, t, heads, dim, generator=g)
    k = torch.randn(1, t, dim, generator=g) + 0.5 * torch.randn(dim, generator=g)
    w = torch.randn(1, t, heads, generator=g) * heads**-0.5
    sums = {m: [0.0] * len(ks) for m in ("fp8", "bf16", "random")}
    counts = [0] * len(ks)
    for start in range(0, t, chunk):
        end = min(start + chunk, t)
        visible = causal_key_mask(start, end - start, end, q.device)[None]  # (1, C, S)
        keys = k[:, :end]
        exact = index_scores(q[:, start:end], keys, w[:, start:end], fp8=False)
        modes = {
            "fp8": index_scores(q[:, start:end], keys, w[:, start:end], fp8=True),
            "bf16": index_scores(
                q[:, start:end].bfloat16(),
                keys.bfloat16(),
                w[:, start:end].bfloat16().float(),
                fp8=False,
            ),
            "random": torch.rand(exact.shape, generator=g),
        }
        n_visible = visible.sum(-1)  # (1, C)
        for i, kk in enumerate(ks):
            rows = n_visible > kk
            if not rows.any():
                continue
            ref = select_topk(exact, visible, kk)
            for m, scores in modes.items():
                got = select_topk(scores, visible, kk)
                frac = (ref & got).sum(-1).float() / kk
                sums[m][i] += float(frac[rows].sum())
            counts[i] += int(rows.sum())
    return {m: [s / c if c else float("nan") for s, c in zip(v, counts)] for m, v in sums.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    p.add_argument("--topk", type=int, nargs="+", default=[128, 512, 2048])
    p.add_argument("--heads", type=int, default=64)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(
        f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; host: {platform.machine()}, "
        f"{os.cpu_count()} CPUs; torch {torch.__version__}; {args.heads} heads x {args.dim} dims"
    )
    print()
    print(
        "| prefill length | top-k | FP8 vs exact | bf16 vs exact (baseline) | random vs exact (chance) |"
    )
    print("|---|---|---|---|---|")
    for t in args.lengths:
        ks = [k for k in args.topk if k < t]
        res = overlaps(t, ks, args.heads, args.dim, args.seed)
        for i, k in enumerate(ks):
            print(
                f"| {t} | {k} | {res['fp8'][i]:.3f} | {res['bf16'][i]:.3f} | {res['random'][i]:.3f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
