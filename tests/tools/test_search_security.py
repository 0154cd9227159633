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
    (git / "config").write_text(
        "[core]\n\trepositoryformatversion = 0\n\tfsmonitor = touch MARK\n"
        "\tpager = touch MARK_PAGER\n[alias]\n\tls-files = !touch MARK_ALIAS\n"
    )
    (folder / "a.txt").write_text("needle\n")


def _no_marks(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("MARK*"))


@pytest.mark.skipif(not HAVE_GIT, reason="git not on PATH")
@pytest.mark.parametrize(
    "with_rg", [pytest.param(True, marks=pytest.mark.skipif(not HAVE_RG, reason="no rg")), False]
)
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


def test_grep_without_ripgrep_streams_and_skips_huge_and_binary_files(tmp_path):
    """Two 2 GB sparse files (one all NUL, one with 16 KB of text first): the fallback engine
    must neither read them whole nor take long. Run in a child to measure its peak memory."""
    import json
    import sys

    root = tmp_path / "work"
    root.mkdir()
    with open(root / "disk.img", "wb") as f:
        f.truncate(2 * 2**30)
    with open(root / "huge.log", "wb") as f:
        f.write(b"needle in a huge log\n" * 800)
        f.truncate(2 * 2**30)
    (root / "small.txt").write_text("a needle\n")
    script = (
        f"import json, sys, time; sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
        "from pathlib import Path\n"
        "from tools.base import ToolContext\nfrom tools.search import GrepTool\n"
        "t = time.monotonic()\n"
        f"r = GrepTool(use_rg=False).run({{'pattern': 'needle'}}, ToolContext(cwd=Path({str(root)!r})))\n"
        # VmHWM, not ru_maxrss: the latter survives exec and would count the forking parent.
        "hwm = [int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM')][0]\n"
        "print(json.dumps({'out': r.content, 's': time.monotonic() - t, 'rss_kb': hwm}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    got = json.loads(done.stdout)
    assert got["out"] == "Found 1 file\nsmall.txt", got["out"]
    assert got["s"] < 10
    assert got["rss_kb"] < 400_000  # the interpreter and pydantic take about 60 MB


def test_grep_fallback_keeps_context_lines_while_streaming(tmp_path):
    lines = [f"line {i}" + (" HIT" if i in (3, 4, 10) else "") for i in range(1, 16)]
    (tmp_path / "f.txt").write_text("\n".join(lines) + "\n")
    ctx = ToolContext(cwd=tmp_path)
    args = {"pattern": "HIT", "output_mode": "content", "context": 1}
    py = GrepTool(use_rg=False).run(args, ctx).content
    assert py.splitlines()[1:] == [
        "f.txt-2-line 2",
        "f.txt:3:line 3 HIT",
        "f.txt:4:line 4 HIT",
        "f.txt-5-line 5",
        "--",
        "f.txt-9-line 9",
        "f.txt:10:line 10 HIT",
        "f.txt-11-line 11",
    ]
    if HAVE_RG:
        assert GrepTool(use_rg=True).run(args, ctx).content == py
