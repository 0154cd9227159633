"""glob and grep on hostile trees: git runs with no config that can execute, big files stream."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tools.base import ToolContext
from tools.search import GlobTool, GrepTool

HAVE_RG = shutil.which("rg") is not None
HAVE_GIT = shutil.which("git") is not None


def plant_fake_repo(folder: Path) -> None:
    """The review's trick: a nested repository whose config names an fsmonitor command."""
    git = folder / ".git"
    (git / "objects").mkdir(parents=True)
    (git / "refs").mkdir()
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "config").write_text("[core]\n\trepositoryformatversion = 0\n\tfsmonitor = touch MARK\n"
                                "\tpager = touch MARK_PAGER\n[alias]\n\tls-files = !touch MARK_ALIAS\n")
    (folder / "a.txt").write_text("needle\n")


def _no_marks(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("MARK*"))


@pytest.mark.skipif(not HAVE_GIT, reason="git not on PATH")
@pytest.mark.parametrize("with_rg", [pytest.param(True, marks=pytest.mark.skipif(not HAVE_RG, reason="no rg")), False])
def test_a_planted_nested_repository_runs_nothing(tmp_path, monkeypatch, with_rg):
    root = tmp_path / "work"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    plant_fake_repo(root / "x")
    if not with_rg:
        # PATH with git but without rg: the tools pick the fallback engine by themselves.
        bindir = tmp_path / "bin"
        bindir.mkdir()
        for exe in ("git", "env", "touch", "sh", "bash"):
            found = shutil.which(exe)
            if found:
                os.symlink(found, bindir / exe)
        monkeypatch.setenv("PATH", str(bindir))
    ctx = ToolContext(cwd=root)
    glob, grep = GlobTool(), GrepTool()
    assert glob.use_rg is with_rg
    r = glob.run({"pattern": "*.txt", "path": "x"}, ctx)
    assert not r.is_error and "x/a.txt" in r.content
    r = grep.run({"pattern": "needle", "path": "x"}, ctx)
    assert not r.is_error and "x/a.txt" in r.content
    r = grep.run({"pattern": "needle", "path": "x", "glob": "*.txt"}, ctx)
    assert not r.is_error and "x/a.txt" in r.content
    r = glob.run({"pattern": "**/*.txt"}, ctx)
    assert not r.is_error
    assert _no_marks(root) == []


@pytest.mark.skipif(not HAVE_GIT, reason="git not on PATH")
def test_the_work_trees_own_config_and_environment_run_nothing(tree, monkeypatch):
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    subprocess.run(["git", "-C", str(tree), "config", "core.fsmonitor", "touch MARK"], check=True)
    (tree / "a.txt").write_text("needle\n")
    # Inherited variables that would put a command on git's command line are dropped too.
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.fsmonitor")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "touch MARK_ENV")
    ctx = ToolContext(cwd=tree)
    r = GlobTool(use_rg=False).run({"pattern": "*.txt"}, ctx)
    assert "a.txt" in r.content
    assert GrepTool(use_rg=False).run({"pattern": "needle"}, ctx).content.startswith("Found 1 file")
    assert _no_marks(tree) == []


@pytest.mark.skipif(not HAVE_GIT, reason="git not on PATH")
def test_the_users_global_excludes_file_still_counts(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "ignore").write_text("*.secret\n")
    (home / ".gitconfig").write_text(f"[core]\n\texcludesFile = {home / 'ignore'}\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    from tools import search_engines

    search_engines._git_env.cache_clear()
    try:
        root = tmp_path / "work"
        root.mkdir()
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        (root / "a.secret").write_text("x\n")
        (root / "b.txt").write_text("x\n")
        r = GlobTool(use_rg=False).run({"pattern": "*"}, ToolContext(cwd=root))
        assert "b.txt" in r.content and "a.secret" not in r.content
    finally:
        search_engines._git_env.cache_clear()
