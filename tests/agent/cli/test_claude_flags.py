"""Claude Code's command line as the Claude Agent SDK writes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agent.cli import main_parser
from agent.cli.claude_flags import split_list, split_unknown

ROOT = Path(__file__).resolve().parents[3]


def test_unknown_flags_are_taken_out_with_their_values() -> None:
    argv = [
        "--output-format",
        "stream-json",
        "--verbose",
        "--setting-sources=user,project",
        "--max-budget-usd",
        "5",
        "--include-hook-events",
        "--model",
        "m",
        "--betas",
        "x,y",
        "--input-format",
        "stream-json",
    ]
    kept, unknown = split_unknown(argv, main_parser())
    assert kept == [
        "--output-format",
        "stream-json",
        "--verbose",
        "--model",
        "m",
        "--input-format",
        "stream-json",
    ]
    assert unknown == ["--setting-sources", "--max-budget-usd", "--include-hook-events", "--betas"]


def test_rule_lists_split_like_the_sdk_joins_them() -> None:
    assert split_list(["Bash(git log:*),Read", "Edit"]) == ["Bash(git log:*)", "Read", "Edit"]
    assert split_list(["Bash(npm run test, lint)"]) == ["Bash(npm run test, lint)"]
    assert split_list(["mcp__git mcp__time"]) == ["mcp__git", "mcp__time"]


def test_an_unknown_flag_is_reported_once_not_a_crash(tmp_path: Path) -> None:
    script = tmp_path / "s.json"
    script.write_text('[{"text": "fine"}]')
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GODWIT_HOME": str(tmp_path / "home")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cli",
            "-p",
            "hi",
            "--model",
            f"scripted:{script}",
            "--effort",
            "high",
            "--effort",
            "low",
            "--session-mirror",
            "--allowedTools",
            "Bash(git status),Read",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "fine"
    assert out.stderr.count("ignoring unsupported option --effort") == 1
    assert "--session-mirror" in out.stderr
