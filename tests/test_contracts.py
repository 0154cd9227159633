"""The house rules, checked with the tests: ruff (format everywhere, lint on LINTED), and the
import-linter contracts of pyproject.toml (the one-way arrows between the packages)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Formatting and lint hold for the whole repository (pyproject.toml lists the few per-file
# exceptions and why).
LINTED = ["."]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("ruff")
    cmd = [exe] if exe else [sys.executable, "-m", "ruff"]
    return subprocess.run([*cmd, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_ruff_lint_passes():
    out = _ruff("check", "--no-fix", "--force-exclude", *LINTED)
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_format_is_applied():
    out = _ruff("format", "--check", "--force-exclude", ".")
    assert out.returncode == 0, out.stdout + out.stderr


def test_import_contracts_hold():
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports (import-linter, in the test extra) is not installed")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout
