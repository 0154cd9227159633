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

from checkpoints import CheckpointStore  # noqa: E402

WORDS = ("def class return import self value result index error config path file tree "
         "checkpoint restore snapshot agent model token kernel cache layer thread lock "
         "journal commit branch merge diff patch line column offset buffer").split()


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
            p.write_bytes(pool[off:off + size])
        paths.append(p)
    (root / ".gitignore").write_text("*.log\n__pycache__/\n")
    (root / "build.log").write_text("ignored\n")
    return paths


def git_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null", GIT_AUTHOR_NAME="b",
               GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b",
               # no `gc --auto` detaching into the background and skewing later measurements
               GIT_CONFIG_COUNT="2", GIT_CONFIG_KEY_0="gc.auto", GIT_CONFIG_VALUE_0="0",
               GIT_CONFIG_KEY_1="maintenance.auto", GIT_CONFIG_VALUE_1="false")
    return env


def plain_git(git_dir: Path, work: Path, *args: str) -> None:
    subprocess.run(["git", f"--git-dir={git_dir}", f"--work-tree={work}", *args], check=True,
                   env=git_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


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
    ap.add_argument("--repeat", type=int, default=7, help="runs of each fast operation (median)")
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
        print(f"tree: {len(paths)} files, {size / 2**20:.0f} MiB, generated in {t_gen:.1f} s",
              flush=True)
        random.Random(1).shuffle(paths)

        os.sync()  # write the generated tree back now, not during the measurements

        # First snapshot vs `git add -A && git commit` in a fresh repository; the baseline runs
        # before and after ours (mean), so neither profits alone from a warmer cache.
        def baseline_first(git_dir: Path) -> float:
            subprocess.run(["git", "init", "-q", "--bare", str(git_dir)], check=True, env=git_env())
            subprocess.run(["git", f"--git-dir={git_dir}", "config", "core.bare", "false"],
                           check=True, env=git_env())
            return timed(lambda: (plain_git(git_dir, work, "add", "-A"),
                                  plain_git(git_dir, work, "commit", "-q", "-m", "b")))
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
        rows.append(("first snapshot", t_first, f"<= 1.2x baseline ({1.2 * t_base_first:.2f} s)",
                     t_base_first, "git add -A && git commit (fresh repo)",
                     t_first <= 1.2 * t_base_first))

        # No change: the store object the runtime keeps, and a fresh one (another process).
        store.snapshot("bench", 0, "warm-up", "before-tool")
        t_nochange = statistics.median(
            timed(lambda: store.snapshot("bench", 1, "", "before-tool"))
            for _ in range(args.repeat))
        t_base_nochange = statistics.median(
            timed(lambda: plain_git(baseline_git, work, "add", "-A")) for _ in range(args.repeat))
        rows.append(("snapshot, nothing changed", t_nochange, "<= 0.150 s", t_base_nochange,
                     "git add -A (stat refresh)", t_nochange <= 0.150))
        t_cold = statistics.median(
            timed(lambda: CheckpointStore(work, home).snapshot("bench", 1, "", "before-tool"))
            for _ in range(3))
        rows.append(("  same, new store object", t_cold, "(info)", t_base_nochange,
                     "git add -A (stat refresh)", None))

        # Ten files changed.
        times, base_times = [], []
        for r in range(args.repeat):
            chunk = paths[100 + 10 * r: 110 + 10 * r]
            touch_files(chunk, 10, f"ten {r}")
            times.append(timed(lambda: store.snapshot("bench", 2 + r, "ten", "before-tool")))
            base_times.append(timed(lambda: (
                plain_git(baseline_git, work, "add", "-A"),
                plain_git(baseline_git, work, "commit", "-q", "-m", "t"))))
        t_ten = statistics.median(times)
        rows.append(("snapshot, 10 files changed", t_ten, "<= 0.250 s",
                     statistics.median(base_times), "git add -A && git commit", t_ten <= 0.250))

        # Restore of 1,000 changed files (changed by "bash", not yet snapshotted).
        target = store.snapshot("bench", 50, "before big change", "turn-start")
        plain_git(baseline_git, work, "add", "-A")
        plain_git(baseline_git, work, "commit", "-q", "--allow-empty", "-m", "before big change")
        restore_times, base_restore_times = [], []
        res = None

        def restore():
            nonlocal res
            res = store.restore(target.id)
        for r in range(3):
            touch_files(paths[1000:2000], 1000, f"thousand {r}")
            restore_times.append(timed(restore))
            assert len(res.changed) == 1000, len(res.changed)
            touch_files(paths[1000:2000], 1000, f"thousand again {r}")
            base_restore_times.append(
                timed(lambda: plain_git(baseline_git, work, "reset", "--hard", "-q")))
        t_restore = statistics.median(restore_times)
        rows.append(("restore, 1,000 files changed", t_restore, "<= 2.0 s",
                     statistics.median(base_restore_times), "git reset --hard", t_restore <= 2.0))
        t_undo = timed(lambda: store.undo_restore())
        rows.append(("  undo of that restore", t_undo, "(info)", None, "", None))
        store_size = store.size_bytes()
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    print(f"\n{'operation':32} {'time':>9}  {'target':34} {'baseline':>9}  baseline command")
    for name, t, target_s, base_t, base_cmd, ok in rows:
        mark = "" if ok is None else ("  ok" if ok else "  MISSED")
        b = f"{base_t:8.3f}s" if base_t is not None else " " * 9
        print(f"{name:32} {t:8.3f}s  {target_s + mark:34} {b}  {base_cmd}")
    print(f"\nstore size after the run: {store_size / 2**20:.0f} MiB; cpu count {os.cpu_count()};"
          f" load average at start {load0}, at end {os.getloadavg()[0]:.2f}")
    if args.json:
        print(json.dumps([{"operation": r[0], "seconds": round(r[1], 4), "target": r[2],
                           "baseline_seconds": None if r[3] is None else round(r[3], 4),
                           "baseline": r[4], "met": r[5]} for r in rows], indent=1))
    return 0 if all(r[5] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
