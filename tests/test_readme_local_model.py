"""The README's local-model path in a fresh virtual environment with exactly `.[local]`.

The test extra (transformers) brings numpy along, so a run of the suite in the development
environment cannot show that the `local` extra is incomplete; only an environment built from the
extra alone can. Slow (two pip installs and a CPU prefill of the ~7K-token system prompt), but
CI runs it: it is the one test of what a new user types.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def _copy_tracked_files(dst: Path) -> None:
    """The repository as a fresh clone has it (no build outputs, no egg-info of the host's install)."""
    files = (
        subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)


def _run(
    cmd: list[str], cwd: Path, env: dict[str, str], timeout: int
) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\n"
        f"stderr:\n{proc.stderr[-3000:]}"
    )
    return proc


def test_readme_local_model_commands_work_with_only_the_local_extra(tmp_path):
    src, env_dir, ckpt = tmp_path / "godwit", tmp_path / "venv", tmp_path / "tiny-dsv32"
    home, project = tmp_path / "home", tmp_path / "project"
    for folder in (src, home, project):
        folder.mkdir()
    _copy_tracked_files(src)
    venv.create(env_dir, with_pip=True)
    bindir = env_dir / ("Scripts" if sys.platform == "win32" else "bin")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
        and not k.startswith(("ANTHROPIC_", "OPENAI_"))
    }
    env.update(
        VIRTUAL_ENV=str(env_dir),
        PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}",
        GODWIT_HOME=str(home),
    )
    # The random model babbles until its output budget runs out (4,096 tokens, minutes on a
    # CPU); a small budget from the user's settings file keeps the run to the prefill.
    (home / "settings.json").write_text(json.dumps({"max_tokens": 16}))

    # README, "Run the whole test suite": the torch pin first (a CPU wheel on the project's machines).
    _run([str(bindir / "python"), "-m", "pip", "install", "-q", "torch==2.13.0"], src, env, 900)
    # README, "With a local model": the three commands, as written.
    _run([str(bindir / "pip"), "install", "-q", "-e", ".[local]"], src, env, 900)
    _run([str(bindir / "python"), "-m", "model.tiny", str(ckpt)], project, env, 300)
    assert (ckpt / "config.json").is_file() and (ckpt / "tokenizer.json").is_file()
    answer = _run(
        [str(bindir / "godwit"), "--model", f"local:{ckpt}", "-p", "hello"], project, env, 900
    )
    assert "Traceback" not in answer.stderr
    # Sixteen tokens of a random model are often all "thinking", so stdout may be empty; the
    # session log shows that the model answered.
    (log,) = (home / "sessions").glob("*/*.jsonl")
    events = [json.loads(line) for line in log.read_text().splitlines()]
    replies = [e for e in events if e["type"] == "assistant"]
    assert replies and replies[-1]["model"].startswith("local:"), events[-3:]
