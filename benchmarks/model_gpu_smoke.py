"""The model package on a CUDA device: the CPU tests' equalities, re-checked on the GPU.

    python benchmarks/model_gpu_smoke.py [DEVICE]      (DEVICE defaults to cuda; cpu for a dry run)

Writes tiny checkpoints (bf16 and FP8) into a temporary folder and prints one table row per check:
CUDA float32 vs CPU float32 and vs transformers on CUDA, absorbed vs expanded MLA in bf16, cached
decoding vs a full forward, FP8 weights kept vs dequantised, and whether `torch._scaled_mm` accepts
DeepSeek's block scales (1x128 activations, 128x128 weights) on this GPU and torch.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import model
from model.fp8 import dequantize_blocks, quantize_blocks, quantize_vectors
from model.generate import decode_step, generate
from model.tiny import write_tiny_checkpoint


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max() / b.float().abs().max())


def scaled_mm_probe(dev: str) -> str:
    """Block-scaled FP8 GEMM through torch._scaled_mm vs dequantise + float32 matmul."""
    from model.fp8 import scaled_mm_blockwise

    results = []
    for m, k, n in ((256, 512, 384), (7, 1536, 7168), (33, 7168, 2048)):
        a, w = torch.randn(m, k, device=dev), torch.randn(n, k, device=dev) * 0.05
        wq, ws = quantize_blocks(w, (128, 128))  # (N, K) fp8, (N/128, K/128)
        aq, as_ = quantize_vectors(a.view(m, k // 128, 128))  # (M, K/128, 128), (M, K/128, 1)
        a_deq = (aq.float() * as_).view(m, k)
        want = a_deq @ dequantize_blocks(wq, ws, (128, 128), torch.float32).T
        try:
            got = scaled_mm_blockwise(a, wq, ws, torch.bfloat16)
        except (RuntimeError, TypeError, ValueError) as exc:
            return f"not supported here: {str(exc).splitlines()[0][:120]}"
        results.append(f"{m}x{k}x{n}: {rel(got, want):.1e}")
    return "works; max rel err " + ", ".join(results)


@torch.no_grad()
def fp8_linear_check(dev: str) -> str:
    """FP8Linear's forward (the FP8 GEMM path on CUDA) against its own dequantised weight."""
    from model.fp8 import FP8Linear

    lin = FP8Linear(1536, 7168).to(dev)
    wq, ws = quantize_blocks(torch.randn(7168, 1536, device=dev) * 0.03, (128, 128))
    lin.weight.data, lin.weight_scale_inv.data = wq, ws
    x = torch.randn(2, 5, 1536, device=dev, dtype=torch.bfloat16)
    used = "FP8 GEMM" if lin._gemm_ok(x) else "dequantise"
    return f"{used}, max rel err {rel(lin(x), x.float() @ lin.dense_weight(torch.float32).T):.1e}"


@torch.no_grad()
def main() -> int:
    logging.disable(logging.WARNING)
    dev = sys.argv[1] if len(sys.argv) > 1 else "cuda"
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    rows = []
    with tempfile.TemporaryDirectory(prefix="godwit-gpu-") as tmp:
        os.environ["GODWIT_HOME"] = tmp
        bf = write_tiny_checkpoint(Path(tmp) / "bf16", layers=3, seed=0)
        f8 = write_tiny_checkpoint(Path(tmp) / "fp8", layers=3, seed=0, fp8=True)
        x = torch.randint(0, 400, (2, 48), generator=torch.Generator().manual_seed(0))
        cpu = model.load(bf, dtype=torch.float32)(x)
        g32 = model.load(bf, device=dev, dtype=torch.float32)
        xg = x.to(dev)
        rows.append(("CUDA fp32 vs CPU fp32 logits (max rel)", rel(g32(xg).cpu(), cpu)))
        try:
            from transformers import DeepseekV32ForCausalLM

            ref = (
                DeepseekV32ForCausalLM.from_pretrained(
                    str(bf), dtype=torch.float32, local_files_only=True
                )
                .to(dev)
                .eval()
            )
            rows.append(("CUDA fp32 vs transformers CUDA fp32", rel(g32(xg), ref(xg).logits)))
            prompt = xg[:1, :12]
            same = (
                generate(g32, prompt, 32).tolist()
                == ref.generate(
                    prompt,
                    max_new_tokens=32,
                    min_new_tokens=32,
                    do_sample=False,
                    eos_token_id=None,
                    pad_token_id=0,
                ).tolist()
            )
            rows.append(("greedy 32 tokens equal to transformers (1 = yes)", float(same)))
        except ImportError as exc:
            rows.append((f"transformers missing: {exc}", float("nan")))
        a16 = model.load(bf, device=dev)
        e16 = model.load(bf, device=dev, attention="expanded")
        short = xg[:, :8]  # <= index_topk: no selection flips from bf16 rounding
        rows.append(("bf16 absorbed vs expanded (max rel, 8 tokens)", rel(a16(short), e16(short))))
        full = g32(xg)
        cache = g32.new_cache(2, 48)
        steps = [g32(xg[:, :30], 0, cache)] + [
            decode_step(g32, xg[:, p], p, cache)[:, None] for p in range(30, 48)
        ]
        rows.append(("fp32 cached decode vs full forward", rel(torch.cat(steps, 1), full)))
        kept, deq = model.load(f8, device=dev, keep_fp8=True), model.load(f8, device=dev)
        rows.append(("FP8 kept vs dequantised on load, bf16 (max rel)", rel(kept(xg), deq(xg))))
        sync()
        t0 = time.perf_counter()
        for p in range(30, 48):
            decode_step(g32, xg[:, p], p, cache)
        sync()
        rows.append(
            (
                "tiny fp32 decode step, ms (plain PyTorch, 3 layers)",
                (time.perf_counter() - t0) / 18 * 1e3,
            )
        )
    print(
        f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {torch.cuda.get_device_name() if dev.startswith('cuda') else dev}; "
        f"torch {torch.__version__}"
    )
    print()
    print("| check | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value:.3g} |")
    print(f"| torch._scaled_mm with 1x128 / 128x128 block scales | {scaled_mm_probe(dev)} |")
    print(
        f"| FP8Linear(1536 -> 7168) on (2, 5, 1536) bf16 vs dequantise + matmul | {fp8_linear_check(dev)} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
