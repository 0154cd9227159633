"""Peak host memory while loading a sharded checkpoint: Godwit's loader vs a naive full load.

    python benchmarks/model_load_memory.py [--hidden 1024] [--layers 6] [--shards 4] [--fp8]

Writes a larger tiny DeepSeek-V3.2 checkpoint (released layout) into a temporary folder, then
loads it in a fresh subprocess per loader and reads that process's peak RSS (VmHWM, reset just
before loading through /proc/self/clear_refs). Bound from the issue: 1.2 x largest shard + the
model's own size on the target device (here the CPU, so the model counts once).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(mode: str, path: str, dtype_name: str) -> None:
    """Load in this process and print {"before", "peak", "model_bytes"} in bytes as JSON."""
    import torch

    dtype = getattr(torch, dtype_name)
    import model
    from model.config import read_config
    from model.transformer import DeepseekV32

    cfg = read_config(path)
    # Warm-up outside the measurement: the first torch ops of a process page in library code and
    # allocator pools (~160 MiB here) whatever is loaded afterwards.
    with torch.device("meta"):
        DeepseekV32(cfg)
    torch.ones(1024, dtype=dtype).to(torch.float32).sum()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _status_kb("VmRSS") * 1024
    if mode == "godwit":
        m = model.load(path, dtype=dtype)
    else:  # naive: materialise the module, read every shard fully, then copy into the module
        from safetensors.torch import load_file

        m = DeepseekV32(cfg).to(dtype)
        state = {}
        for shard in sorted(Path(path).glob("*.safetensors")):
            state.update(load_file(str(shard)))
        own = m.state_dict()
        for name, t in own.items():
            if name in state:
                t.copy_(state[name].to(t.dtype))
        del state
    # Read every weight once, so that any lazily mapped pages are counted as resident too.
    checksum = sum(float(t.float().sum()) for t in list(m.parameters()) + list(m.buffers()))
    peak = _status_kb("VmHWM") * 1024
    size = sum(t.numel() * t.element_size() for t in list(m.parameters()) + list(m.buffers()))
    print(json.dumps({"before": before, "peak": peak, "model_bytes": size, "checksum": checksum}))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--fp8", action="store_true", help="FP8 checkpoint, dequantised on load")
    p.add_argument("--child", nargs=3, metavar=("MODE", "PATH", "DTYPE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(*args.child)
        return 0

    with tempfile.TemporaryDirectory(prefix="godwit-loadmem-") as tmp:
        env = {**os.environ, "GODWIT_HOME": tmp, "PYTHONPATH": str(ROOT)}
        ckpt = Path(tmp) / "ckpt"
        sys.path.insert(0, str(ROOT))
        from model.tiny import write_tiny_checkpoint

        write_tiny_checkpoint(
            ckpt,
            layers=args.layers,
            hidden=args.hidden,
            shards=args.shards,
            fp8=args.fp8,
            overrides={
                "moe_intermediate_size": args.hidden // 2,
                "n_routed_experts": 16,
                "intermediate_size": 4 * args.hidden,
            },
        )
        shards = sorted(ckpt.glob("*.safetensors"))
        largest = max(s.stat().st_size for s in shards)
        total = sum(s.stat().st_size for s in shards)
        rows = []
        for mode in ("godwit", "naive"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, str(ckpt), args.dtype],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            bound = 1.2 * largest + r["model_bytes"]
            rows.append(
                (mode, (r["peak"] - r["before"]) / MIB, bound / MIB, r["model_bytes"] / MIB)
            )
    print(
        f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; host: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs; python {platform.python_version()}"
    )
    print(
        f"checkpoint: {len(shards)} shards, {total / MIB:.1f} MiB total, largest {largest / MIB:.1f} MiB"
        f"{', FP8' if args.fp8 else ''}; target cpu {args.dtype}"
    )
    print()
    print(
        "| loader | peak RSS over start (MiB) | model on CPU (MiB) | bound 1.2 x shard + model (MiB) | within |"
    )
    print("|---|---|---|---|---|")
    for mode, used, bound, size in rows:
        print(
            f"| {mode} | {used:.1f} | {size:.1f} | {bound:.1f} | {'yes' if used <= bound else 'NO'} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
