"""The README's promises: the demo and both examples run offline, as a new user would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def run(args, cwd, **env):
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120
    )


def test_demo_fixes_the_bug_with_checkpoints(tmp_path):
    out = run(["-m", "agent.cli", "demo", "--fast"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "the tests pass" in out.stdout and "Checkpoints (" in out.stdout
    assert "  > Run `python test_calc.py`" in out.stdout and "all tests passed" in out.stdout
    project = Path(out.stdout.split("Project: ")[1].split()[0])
    assert "/ len(values)" in (project / "calc.py").read_text()
    assert (
        "all tests passed"
        in subprocess.run(
            [sys.executable, "test_calc.py"], cwd=project, capture_output=True, text=True
        ).stdout
    )
    rows = json.loads(run(["-m", "agent.cli", "checkpoints", "--json"], project).stdout)
    first = rows[0]["id"]
    assert run(["-m", "agent.cli", "rewind", first, "--code"], project).returncode == 0
    assert "(len(values) - 1)" in (project / "calc.py").read_text()


def test_demo_stream_json(tmp_path):
    out = run(["-m", "agent.cli", "demo", "--fast", "--output-format", "stream-json"], tmp_path)
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[0]["type"] == "system" and lines[-1]["type"] == "result"
    assert lines[-1]["is_error"] is False


def test_examples_run_offline(tmp_path):
    one = run([str(ROOT / "examples" / "run_task.py"), str(tmp_path / "a")], tmp_path)
    assert one.returncode == 0, one.stderr
    assert "result: hello.py prints 'hello'." in one.stdout and "checkpoint" in one.stdout
    (tmp_path / "b").mkdir()
    two = run([str(ROOT / "examples" / "tools_and_hooks.py"), str(tmp_path / "b")], tmp_path)
    assert two.returncode == 0, two.stderr
    assert "<- 3" in two.stdout and "not allowed" in two.stdout
    assert (tmp_path / "b" / "notes.txt").exists()
