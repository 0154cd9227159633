"""Checkpoint store speed on a generated tree, with plain git as the baseline in the same run.

    python benchmarks/checkpoints_bench.py                 # 20,000 files, ~500 MB, temp dir
    python benchmarks/checkpoints_bench.py --files 2000 --size-mb 50   # a quick run
    python benchmarks/checkpoints_bench.py --json          # the table as JSON too

Targets (issue): no-change snapshot <= 150 ms; 10 files changed <= 250 ms; first snapshot
<= 1.2x `git add -A && git commit` in a fresh repository; restore of 1,000 changed files <= 2 s.
The figures of record are in checkpoints/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checkpoints import CheckpointStore

WORDS = [
    "def",
    "class",
    "return",
    "import",
    "self",
    "value",
    "result",
    "index",
    "error",
    "config",
    "path",
    "file",
    "tree",
    "checkpoint",
    "restore",
    "snapshot",
    "agent",
    "model",
    "token",
    "kernel",
    "cache",
    "layer",
    "thread",
    "lock",
    "journal",
    "commit",
    "branch",
    "merge",
    "diff",
    "patch",
    "line",
    "column",
    "offset",
    "buffer",
]


def generate(root: Path, n_files: int, total_bytes: int, seed: int = 7) -> list[Path]:
    """A source-like tree: ~1,000 directories, 85% text files, 15% binary (random) files."""
    rng = random.Random(seed)
    pool = " ".join(rng.choice(WORDS) for _ in range(400_000)).encode()
    pool = pool.replace(b"return ", b"return\n    ")
    avg = total_bytes // n_files
    paths = []
    per_dir = 20
    for i in range(n_files):
        d = root / f"pkg{i // (per_dir * 25):03d}" / f"mod{(i // per_dir) % 25:02d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        size = max(16, int(rng.expovariate(1 / avg)))
        if i % 7 == 0:
            p = d / f"asset{i}.bin"
            p.write_bytes(rng.randbytes(size))
        else:
            p = d / f"file{i}.py"
            off = rng.randrange(0, len(pool) - size - 1) if size < len(pool) else 0
            p.write_bytes(pool[off : off + size])
        paths.append(p)
    (root / ".gitignore").write_text("*.log\n__pycache__/\n")
    (root / "build.log").write_text("ignored\n")
    return paths


def git_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL="/dev/null",
        GIT_AUTHOR_NAME="b",
        GIT_AUTHOR_EMAIL="b@b",
        GIT_COMMITTER_NAME="b",
        GIT_COMMITTER_EMAIL="b@b",
        # no `gc --auto` detaching into the background and skewing later measurements
        GIT_CONFIG_COUNT="2",
        GIT_CONFIG_KEY_0="gc.auto",
        GIT_CONFIG_VALUE_0="0",
        GIT_CONFIG_KEY_1="maintenance.auto",
        GIT_CONFIG_VALUE_1="false",
    )
    return env


def plain_git(git_dir: Path, work: Path, *args: str) -> None:
    subprocess.run(
        ["git", f"--git-dir={git_dir}", f"--work-tree={work}", *args],
        check=True,
        env=git_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def touch_files(paths: list[Path], n: int, tag: str) -> None:
    for p in paths[:n]:
        with open(p, "ab") as fh:
            fh.write(f"\n# {tag}\n".encode())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--size-mb", type=int, default=500)
    ap.add_argument("--dir", type=Path, help="where to build the tree (default: a temp dir)")
    ap.add_argument("--repeat", type=int, default=7, help="runs of each snapshot measurement")
    ap.add_argument("--restore-repeat", type=int, default=5, help="runs of the restore")
    ap.add_argument("--json", action="store_true", help="also print the rows as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the generated tree")
    args = ap.parse_args()

    load0 = f"{os.getloadavg()[0]:.2f}"
    base = Path(tempfile.mkdtemp(prefix="godwit-ckpt-bench-", dir=args.dir))
    work, home, baseline_git = base / "tree", base / "home", base / "baseline.git"
    work.mkdir()
    rows = []
    try:
        t_gen = timed(lambda: generate(work, args.files, args.size_mb * 2**20))
        paths = sorted(p for p in work.rglob("*") if p.is_file() and p.suffix in (".py", ".bin"))
        size = sum(p.stat().st_size for p in paths)
        print(
            f"tree: {len(paths)} files, {size / 2**20:.0f} MiB, generated in {t_gen:.1f} s",
            flush=True,
        )
        random.Random(1).shuffle(paths)

        os.sync()  # write the generated tree back now, not during the measurements

        # First snapshot vs `git add -A && git commit` in a fresh repository; the baseline runs
        # before and after ours (mean), so neither profits alone from a warmer cache.
        def baseline_first(git_dir: Path) -> float:
            subprocess.run(["git", "init", "-q", "--bare", str(git_dir)], check=True, env=git_env())
            subprocess.run(
                ["git", f"--git-dir={git_dir}", "config", "core.bare", "false"],
                check=True,
                env=git_env(),
            )
            return timed(
                lambda: (
                    plain_git(git_dir, work, "add", "-A"),
                    plain_git(git_dir, work, "commit", "-q", "-m", "b"),
                )
            )

        t_base_a = baseline_first(baseline_git)
        os.sync()
        store = CheckpointStore(work, home)
        cp0 = None

        def first():
            nonlocal cp0
            cp0 = store.snapshot("bench", 0, "first", "turn-start")

        t_first = timed(first)
        os.sync()
        spare = base / "baseline2.git"
        t_base_b = baseline_first(spare)
        shutil.rmtree(spare, ignore_errors=True)
        t_base_first = (t_base_a + t_base_b) / 2
        rows.append(
            row(
                "first snapshot",
                [t_first],
                [t_base_first],
                "git add -A && git commit (fresh repo)",
                ratio=1.2,
            )
        )

        # No change: the store object the runtime keeps, and a fresh one (another process).
        store.snapshot("bench", 0, "warm-up", "before-tool")
        nochange = [
            timed(lambda: store.snapshot("bench", 1, "", "before-tool")) for _ in range(args.repeat)
        ]
        base_nochange = [
            timed(lambda: plain_git(baseline_git, work, "add", "-A")) for _ in range(args.repeat)
        ]
        rows.append(
            row(
                "snapshot, nothing changed",
                nochange,
                base_nochange,
                "git add -A (stat refresh)",
                limit=0.150,
            )
        )
        cold = [
            timed(lambda: CheckpointStore(work, home).snapshot("bench", 1, "", "before-tool"))
            for _ in range(3)
        ]
        rows.append(
            row("  same, new store object", cold, base_nochange, "git add -A (stat refresh)")
        )

        # Ten files changed.
        times, base_times = [], []
        for r in range(args.repeat):
            chunk = paths[100 + 10 * r : 110 + 10 * r]
            touch_files(chunk, 10, f"ten {r}")
            times.append(timed(lambda r=r: store.snapshot("bench", 2 + r, "ten", "before-tool")))
            base_times.append(
                timed(
                    lambda: (
                        plain_git(baseline_git, work, "add", "-A"),
                        plain_git(baseline_git, work, "commit", "-q", "-m", "t"),
                    )
                )
            )
        rows.append(
            row(
                "snapshot, 10 files changed",
                times,
                base_times,
                "git add -A && git commit",
                limit=0.250,
            )
        )

        # Restore of 1,000 changed files (changed by "bash", not yet snapshotted).
        target = store.snapshot("bench", 50, "before big change", "turn-start")
        plain_git(baseline_git, work, "add", "-A")
        plain_git(baseline_git, work, "commit", "-q", "--allow-empty", "-m", "before big change")
        restore_times, base_restore_times = [], []
        res = None
        big = paths[len(paths) // 2 :][:1000]

        def restore():
            nonlocal res
            res = store.restore(target.id)

        for r in range(args.restore_repeat):
            touch_files(big, len(big), f"thousand {r}")
            restore_times.append(timed(restore))
            assert len(res.changed) == len(big), len(res.changed)
            touch_files(big, len(big), f"thousand again {r}")
            base_restore_times.append(
                timed(lambda: plain_git(baseline_git, work, "reset", "--hard", "-q"))
            )
        rows.append(
            row(
                f"restore, {len(big):,} files changed",
                restore_times,
                base_restore_times,
                "git reset --hard",
                limit=2.0,
            )
        )
        rows.append(row("  undo of that restore", [timed(lambda: store.undo_restore())], None, ""))
        store_size = store.size_bytes()
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    print(
        f"\n{'operation':30} {'best':>8} {'median':>8}  {'target':24} {'baseline':>8} "
        f"{'median':>8}  baseline command"
    )
    for r in rows:
        mark = "" if r["met"] is None else ("  ok" if r["met"] else "  MISSED")
        b = (
            f"{r['baseline_best']:7.3f}s {r['baseline_median']:7.3f}s"
            if r["baseline_best"] is not None
            else " " * 17
        )
        print(
            f"{r['operation']:30} {r['best']:7.3f}s {r['median']:7.3f}s  "
            f"{r['target'] + mark:24} {b}  {r['baseline']}"
        )
    print(
        f"\nbest of {args.repeat} runs ({args.restore_repeat} for restores, 1 for the first "
        f"snapshot, whose baseline is the mean of a run before and after it); targets are "
        f"judged on the best run.\nstore size after the run: {store_size / 2**20:.0f} MiB; "
        f"cpu count {os.cpu_count()}; load average at start {load0}, at end "
        f"{os.getloadavg()[0]:.2f}"
    )
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0 if all(r["met"] is not False for r in rows) else 1


def row(
    name: str,
    times: list[float],
    base: list[float] | None,
    base_cmd: str,
    *,
    limit: float | None = None,
    ratio: float | None = None,
) -> dict:
    """One line of the table: best and median of our runs and of the baseline's."""
    best = min(times)
    base_best = min(base) if base else None
    met, target = None, "(info)"
    if limit is not None:
        met, target = best <= limit, f"<= {limit:.3f} s"
    elif ratio is not None and base_best is not None:
        met, target = best <= ratio * base_best, f"<= {ratio}x baseline"
    return {
        "operation": name,
        "best": round(best, 4),
        "median": round(statistics.median(times), 4),
        "target": target,
        "baseline_best": None if base_best is None else round(base_best, 4),
        "baseline_median": None if not base else round(statistics.median(base), 4),
        "baseline": base_cmd,
        "met": met,
    }


if __name__ == "__main__":
    sys.exit(main())
