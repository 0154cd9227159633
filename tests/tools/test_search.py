"""glob and grep: ripgrep and the pure-Python fallback give the same answers."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tools.base import ToolContext
from tools.search import GlobTool, GrepTool, glob_match, parse_gitignore, translate_glob

HAVE_RG = shutil.which("rg") is not None
HAVE_GIT = shutil.which("git") is not None
ENGINES = [
    pytest.param(True, id="rg", marks=pytest.mark.skipif(not HAVE_RG, reason="rg not on PATH")),
    pytest.param(False, id="py"),
]


def _write(root: Path, rel: str, data: bytes | str, mtime: float | None = None) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        p.write_text(data)
    else:
        p.write_bytes(data)
    if mtime is not None:
        os.utime(p, (mtime, mtime))


def build_tree(root: Path) -> None:
    """A tree exercising ignore rules, hidden files, links, binaries and line endings."""
    t0 = 1_700_000_000
    _write(
        root,
        ".gitignore",
        "# comment\nbuild/\n*.log\n/top_only.txt\ndocs/generated/**\n!keep.log\n\\#hash.txt\n",
        t0,
    )
    _write(root, "README.md", "# Project\nTODO: write docs\n", t0 + 10)
    _write(root, "top_only.txt", "todo ignored at top\n", t0 + 11)
    _write(root, "src/top_only.txt", "TODO: not ignored, anchored rule\n", t0 + 12)
    _write(
        root,
        "src/app.py",
        "import os\n\ndef main():\n    # TODO: refactor\n    return os.getcwd()\n",
        t0 + 50,
    )
    _write(
        root,
        "src/util.py",
        "def helper(x):\n    return x * 2\n\n\ndef other():\n    pass  # todo lower\n",
        t0 + 40,
    )
    _write(root, "src/pkg/mod.py", "VALUE = 1\n# TODO: pkg\n", t0 + 30)
    _write(root, "src/pkg/mod.js", "const todo = 'TODO';\n", t0 + 31)
    _write(root, "src/pkg/.hidden.py", "# TODO: hidden but not ignored\n", t0 + 20)
    _write(root, "src/pkg/.gitignore", "*.tmp\n!important.tmp\nlocal/\n", t0 + 1)
    _write(root, "src/pkg/scratch.tmp", "TODO scratch\n", t0 + 2)
    _write(root, "src/pkg/important.tmp", "TODO important\n", t0 + 3)
    _write(root, "src/pkg/local/x.py", "TODO local\n", t0 + 4)
    _write(root, "build/out.py", "TODO build output\n", t0 + 60)
    _write(root, "debug.log", "TODO log\n", t0 + 61)
    _write(root, "keep.log", "TODO kept log\n", t0 + 62)
    _write(root, "#hash.txt", "TODO hash\n", t0 + 63)
    _write(root, "docs/guide.md", "Guide\ntodo: more\n", t0 + 5)
    _write(root, "docs/generated/api.md", "TODO generated\n", t0 + 6)
    _write(root, "win.txt", b"first TODO\r\nsecond\r\nthird TODO$\r\n", t0 + 7)
    _write(root, "data.bin", b"TODO\x00\x01\x02binary", t0 + 8)
    _write(root, "latin.txt", "caf\xe9 TODO\n".encode("latin-1"), t0 + 9)
    _write(root, "long.txt", "TODO " + "y" * 2000 + "\n", t0 + 13)
    _write(
        root,
        "ctx.txt",
        "".join(f"line {i}{' TODO' if i in (5, 7, 20) else ''}\n" for i in range(1, 31)),
        t0 + 14,
    )
    os.symlink("src/app.py", root / "link.py")
    os.symlink(str(root / "src"), root / "srclink")
    (root / ".git_not_really").mkdir()  # a hidden folder that is not .git
    _write(root, ".git_not_really/n.txt", "TODO hidden folder\n", t0 + 15)


def make_git(root: Path) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, env=env)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "init"], cwd=root, check=True, env=env)
    # an untracked file (listed) and a tracked-but-now-ignored one (skipped, as rg does)
    _write(root, "src/untracked.py", "TODO untracked\n", 1_700_000_070)
    with open(root / ".gitignore", "a") as f:
        f.write("README.md\n")
    (root / ".git" / "info").mkdir(exist_ok=True)
    with open(root / ".git" / "info" / "exclude", "a") as f:
        f.write("excluded_locally.txt\n")
    _write(root, "excluded_locally.txt", "TODO excluded\n", 1_700_000_071)


@pytest.fixture(params=["plain", "git"])
def stree(request, tree: Path) -> Path:
    build_tree(tree)
    if request.param == "git":
        if not HAVE_GIT:
            pytest.skip("git not installed")
        make_git(tree)
    return tree


def glob_(ctx, use_rg, **args):
    r = GlobTool(use_rg=use_rg).run(args, ctx)
    assert not r.is_error, r.content
    return r.content


def grep_(ctx, use_rg, **args):
    r = GrepTool(use_rg=use_rg).run(args, ctx)
    assert not r.is_error, r.content
    return r.content


def files_of(out: str) -> list[str]:
    return [l for l in out.splitlines()[1:] if not l.startswith("[")]


# -- unit: globs and gitignore rules ---------------------------------------------------------


@pytest.mark.parametrize(
    "pat,path,hit",
    [
        ("*.py", "a.py", True),
        ("*.py", "src/a.py", False),
        ("**/*.py", "a.py", True),
        ("**/*.py", "src/deep/a.py", True),
        ("src/**", "src/a/b.c", True),
        ("src/**/test_*.py", "src/test_x.py", True),
        ("src/**/test_*.py", "src/a/b/test_x.py", True),
        ("src/*.py", "src/a/b.py", False),
        ("*.{js,ts}", "x.ts", True),
        ("*.{js,ts}", "x.py", False),
        ("file?.txt", "file1.txt", True),
        ("file?.txt", "file/.txt", False),
        ("[ab]*.md", "b.md", True),
        ("[!ab]*.md", "c.md", True),
        ("[!ab]*.md", "a.md", False),
        ("a**b", "axxb", True),
        ("a**b", "ax/xb", False),
    ],
)
def test_glob_translation(pat, path, hit):
    assert glob_match(pat, path) is hit, translate_glob(pat)


def test_gitignore_parse():
    rules = parse_gitignore("# c\n\n!keep\n/anch\ndir/\nsp\\ \n\\!bang\n")
    assert [(r.negate, r.dir_only, r.anchored) for r in rules] == [
        (True, False, False),
        (False, False, True),
        (False, True, False),
        (False, False, False),
        (False, False, False),
    ]
    assert rules[3].regex.fullmatch("sp ")
    assert rules[4].regex.fullmatch("!bang")


# -- glob --------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_rg", ENGINES)
def test_glob_respects_ignores_and_sorts_by_mtime(stree, use_rg, request):
    ctx = ToolContext(cwd=stree)
    out = glob_(ctx, use_rg, pattern="**/*.py")
    files = out.splitlines()
    git = "git" in request.node.callspec.id
    expected = ["src/app.py", "src/util.py", "src/pkg/mod.py", "src/pkg/.hidden.py"]
    if git:
        expected = ["src/untracked.py", *expected]
    assert files == expected
    # not: build/ (dir rule), local/ (nested dir rule), link.py and srclink/ (symlinks)


@pytest.mark.parametrize("use_rg", ENGINES)
def test_glob_ignore_details(stree, use_rg):
    ctx = ToolContext(cwd=stree)
    everything = set(glob_(ctx, use_rg, pattern="**").splitlines())
    assert "keep.log" in everything and "debug.log" not in everything  # negation
    assert "src/top_only.txt" in everything and "top_only.txt" not in everything  # anchored
    assert (
        "src/pkg/important.tmp" in everything and "src/pkg/scratch.tmp" not in everything
    )  # nested
    assert "docs/guide.md" in everything and "docs/generated/api.md" not in everything  # /**
    assert "#hash.txt" not in everything  # escaped '#'
    assert ".git_not_really/n.txt" in everything and ".gitignore" in everything  # hidden included
    assert not any(p.startswith(".git/") for p in everything)
    assert "data.bin" in everything  # glob lists binaries; grep skips them


@pytest.mark.parametrize("use_rg", ENGINES)
def test_glob_patterns_and_path(stree, use_rg):
    ctx = ToolContext(cwd=stree)
    git = (stree / ".git").is_dir()
    assert glob_(ctx, use_rg, pattern="*.txt").splitlines() == [
        "ctx.txt",
        "long.txt",
        "latin.txt",
        "win.txt",
    ]
    top_md = glob_(ctx, use_rg, pattern="*.md")
    assert top_md == ("No files match the pattern '*.md' in the work tree." if git else "README.md")
    assert glob_(ctx, use_rg, pattern="*.py", path="src").splitlines()[-2:] == [
        "src/app.py",
        "src/util.py",
    ]
    assert "src/pkg/mod.py" not in glob_(ctx, use_rg, pattern="*.py", path="src")
    assert set(glob_(ctx, use_rg, pattern="**/mod.{py,js}").splitlines()) == {
        "src/pkg/mod.py",
        "src/pkg/mod.js",
    }
    assert glob_(ctx, use_rg, pattern=str(stree / "src" / "*.py"), path="src")
    assert "No files match" in glob_(ctx, use_rg, pattern="**/*.nothing")


@pytest.mark.parametrize("use_rg", ENGINES)
def test_glob_cap(stree, use_rg):
    ctx = ToolContext(cwd=stree)
    r = GlobTool(use_rg=use_rg, max_results=3).run({"pattern": "**"}, ctx)
    lines = r.content.splitlines()
    assert len(lines) == 4 and "Showing the 3 most recently modified" in lines[-1]


@pytest.mark.parametrize("use_rg", ENGINES)
def test_glob_errors(stree, use_rg, tmp_path):
    ctx = ToolContext(cwd=stree)
    g = GlobTool(use_rg=use_rg)
    assert "outside the work tree" in g.run({"pattern": "*", "path": ".."}, ctx).content
    assert "outside the work tree" in g.run({"pattern": "*", "path": str(tmp_path)}, ctx).content
    assert "does not exist" in g.run({"pattern": "*", "path": "nope"}, ctx).content
    assert "not a directory" in g.run({"pattern": "*", "path": "README.md"}, ctx).content
    assert "'..'" in g.run({"pattern": "../*"}, ctx).content
    assert "absolute" in g.run({"pattern": "/etc/*"}, ctx).content
    assert "empty" in g.run({"pattern": " "}, ctx).content
    r = g.run(
        {"pattern": "*", "path": "srclink"}, ctx
    )  # a link inside the tree to a folder inside: fine
    assert not r.is_error
    os.symlink(tmp_path, stree / "outlink")
    assert "symbolic link" in g.run({"pattern": "*", "path": "outlink"}, ctx).content
    if (stree / ".git").is_dir():
        assert ".git folder" in g.run({"pattern": "*", "path": ".git"}, ctx).content
    assert g.run({"patern": "*"}, ctx).is_error


# -- grep --------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_rg", ENGINES)
def test_grep_files_with_matches(stree, use_rg, request):
    ctx = ToolContext(cwd=stree)
    out = grep_(ctx, use_rg, pattern="TODO")
    files = files_of(out)
    assert files == sorted(files)
    assert "data.bin" not in files  # binary
    assert "build/out.py" not in files and "debug.log" not in files  # ignored
    assert "keep.log" in files and "win.txt" in files and "latin.txt" in files
    assert "src/pkg/.hidden.py" in files
    assert "link.py" not in files and not any(f.startswith("srclink/") for f in files)
    assert out.startswith(f"Found {len(files)} files")
    if "git" in request.node.callspec.id:
        assert "README.md" not in files  # tracked but ignored now
        assert "excluded_locally.txt" not in files
        assert "src/untracked.py" in files
    else:
        assert "README.md" in files


@pytest.mark.parametrize("use_rg", ENGINES)
def test_grep_content_count_context(stree, use_rg):
    ctx = ToolContext(cwd=stree)
    out = grep_(ctx, use_rg, pattern="TODO", path="ctx.txt", output_mode="content")
    assert out.splitlines()[1:] == [
        "ctx.txt:5:line 5 TODO",
        "ctx.txt:7:line 7 TODO",
        "ctx.txt:20:line 20 TODO",
    ]
    out = grep_(ctx, use_rg, pattern="TODO", path="ctx.txt", output_mode="content", context=1)
    assert out.splitlines()[1:] == [
        "ctx.txt-4-line 4",
        "ctx.txt:5:line 5 TODO",
        "ctx.txt-6-line 6",
        "ctx.txt:7:line 7 TODO",
        "ctx.txt-8-line 8",
        "--",
        "ctx.txt-19-line 19",
        "ctx.txt:20:line 20 TODO",
        "ctx.txt-21-line 21",
    ]
    out = grep_(ctx, use_rg, pattern="todo", case_insensitive=True, output_mode="count", path="src")
    assert "src/util.py:1" in out.splitlines() and "src/pkg/mod.js:1" in out.splitlines()
    out = grep_(ctx, use_rg, pattern="TODO", output_mode="count", path="src/pkg")
    assert "src/pkg/mod.js:1" in out.splitlines()
    assert "No matches" in grep_(ctx, use_rg, pattern="todo", path="src/pkg/mod.py")


@pytest.mark.parametrize("use_rg", ENGINES)
def test_grep_crlf_latin1_long_lines(stree, use_rg):
    ctx = ToolContext(cwd=stree)
    out = grep_(ctx, use_rg, pattern=r"TODO\$$", path="win.txt", output_mode="content")
    assert "No matches" in out  # '$' does not see past the \r, in either engine
    out = grep_(ctx, use_rg, pattern="third", path="win.txt", output_mode="content")
    assert out.splitlines()[1] == "win.txt:3:third TODO$"
    out = grep_(ctx, use_rg, pattern="TODO", path="latin.txt", output_mode="content")
    assert out.splitlines()[1] == "latin.txt:1:caf\ufffd TODO"
    out = grep_(ctx, use_rg, pattern="TODO", path="long.txt", output_mode="content")
    assert "more characters" in out and len(out) < 700


@pytest.mark.parametrize("use_rg", ENGINES)
def test_grep_glob_filter(stree, use_rg):
    ctx = ToolContext(cwd=stree)
    assert set(files_of(grep_(ctx, use_rg, pattern="TODO", glob="*.py", path="src"))) >= {
        "src/app.py",
        "src/pkg/mod.py",
    }
    assert "src/pkg/mod.js" not in grep_(ctx, use_rg, pattern="TODO", glob="*.py")
    assert files_of(grep_(ctx, use_rg, pattern="TODO", glob="src/pkg/*.{js,py}")) == [
        "src/pkg/.hidden.py",
        "src/pkg/mod.js",
        "src/pkg/mod.py",
    ]
    excl = files_of(grep_(ctx, use_rg, pattern="TODO", glob="!*.py"))
    assert excl and not any(f.endswith(".py") for f in excl)
    # a glob never brings ignored files back
    assert "debug.log" not in grep_(ctx, use_rg, pattern="TODO", glob="*.log")


@pytest.mark.parametrize("use_rg", ENGINES)
def test_grep_max_results(stree, use_rg):
    ctx = ToolContext(cwd=stree)
    out = grep_(ctx, use_rg, pattern="TODO", max_results=2)
    assert len(files_of(out)) == 2 and "Showing 2 of" in out
    out = grep_(ctx, use_rg, pattern="line", path="ctx.txt", output_mode="content", max_results=5)
    assert len(out.splitlines()) == 7 and "Output cut" in out
    out = (
        GrepTool(use_rg=use_rg, max_results=1)
        .run({"pattern": "TODO", "output_mode": "count"}, ctx)
        .content
    )
    assert "Showing 1 of" in out


@pytest.mark.parametrize("use_rg", ENGINES)
def test_grep_errors(stree, use_rg, tmp_path):
    ctx = ToolContext(cwd=stree)
    g = GrepTool(use_rg=use_rg)
    r = g.run({"pattern": "(unclosed"}, ctx)
    assert r.is_error and ("regex" in r.content.lower() or "regular expression" in r.content)
    assert "outside the work tree" in g.run({"pattern": "x", "path": "../"}, ctx).content
    assert "does not exist" in g.run({"pattern": "x", "path": "missing/"}, ctx).content
    assert g.run({"pattern": ""}, ctx).is_error
    assert g.run({"pattern": "x", "output_mode": "lines"}, ctx).is_error
    assert g.run({"pattern": "x", "context": -1}, ctx).is_error
    (tmp_path / "secret.txt").write_text("TODO secret\n")
    os.symlink(tmp_path / "secret.txt", stree / "secret_link.txt")
    assert "symbolic link" in g.run({"pattern": "TODO", "path": "secret_link.txt"}, ctx).content


def test_read_only_and_specs():
    for t in (GlobTool(use_rg=False), GrepTool(use_rg=False)):
        assert t.is_read_only({})
        spec = t.anthropic_spec()
        assert set(spec) == {"name", "description", "input_schema"} and spec["name"] == t.name
        assert t.openai_spec()["function"]["name"] == t.name
    props = GrepTool(use_rg=False).anthropic_spec()["input_schema"]["properties"]
    assert set(props) == {
        "pattern",
        "path",
        "glob",
        "case_insensitive",
        "output_mode",
        "context",
        "max_results",
    }
    assert props["output_mode"]["enum"] == ["files_with_matches", "content", "count"]


def test_use_rg_true_without_rg(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ValueError):
        GrepTool(use_rg=True)
    assert GrepTool().use_rg is False


# -- the two engines agree ---------------------------------------------------------------------

QUERIES = [
    ("glob", {"pattern": "**"}),
    ("glob", {"pattern": "**/*.py"}),
    ("glob", {"pattern": "*"}),
    ("glob", {"pattern": "**/*.{md,txt}"}),
    ("glob", {"pattern": "**", "path": "src"}),
    ("glob", {"pattern": "**", "path": "src/pkg"}),
    ("glob", {"pattern": "**", "path": "build"}),
    ("glob", {"pattern": "**", "path": "docs/generated"}),
    ("grep", {"pattern": "TODO"}),
    ("grep", {"pattern": "todo", "case_insensitive": True, "output_mode": "count"}),
    ("grep", {"pattern": "TODO", "output_mode": "content"}),
    ("grep", {"pattern": "TODO", "output_mode": "content", "context": 2}),
    ("grep", {"pattern": r"def \w+\(", "output_mode": "content", "path": "src"}),
    ("grep", {"pattern": "^line [0-9]+$", "output_mode": "count"}),
    ("grep", {"pattern": "TODO", "glob": "*.py"}),
    ("grep", {"pattern": "TODO", "glob": "!*.py", "output_mode": "count"}),
    ("grep", {"pattern": "TODO", "glob": "src/**"}),
    ("grep", {"pattern": "TODO", "path": "src/pkg", "output_mode": "content"}),
    ("grep", {"pattern": "TODO", "path": "build"}),
    ("grep", {"pattern": "TODO", "path": "data.bin"}),
    ("grep", {"pattern": "TODO", "path": "debug.log"}),
    ("grep", {"pattern": "nothing-matches-this"}),
]


@pytest.mark.skipif(not HAVE_RG, reason="rg not on PATH")
def test_engines_agree(stree):
    ctx = ToolContext(cwd=stree)
    for tool, args in QUERIES:
        cls = GlobTool if tool == "glob" else GrepTool
        a = cls(use_rg=True).run(args, ctx)
        b = cls(use_rg=False).run(args, ctx)
        assert (a.is_error, a.content) == (b.is_error, b.content), (tool, args)


def test_fallback_without_git_binary(tree, monkeypatch):
    """No git on PATH: the walk (with .gitignore) still applies inside a repository."""
    build_tree(tree)
    if HAVE_GIT:
        make_git(tree)
    ctx = ToolContext(cwd=tree)
    real_which = shutil.which
    monkeypatch.setattr(
        "tools.search.shutil.which", lambda name: None if name == "git" else real_which(name)
    )
    files = glob_(ctx, False, pattern="**").splitlines()
    assert (
        "build/out.py" not in files
        and "keep.log" in files
        and not any(f.startswith(".git/") for f in files)
    )


@pytest.mark.skipif(shutil.which("rg") is None, reason="ripgrep not installed")
def test_grep_content_on_a_huge_single_line_file_is_quick(tmp_path):
    import time

    (tmp_path / "min.js").write_text("x" * 3_000_000 + "\n")
    tool = GrepTool(use_rg=True)
    t0 = time.monotonic()
    result = tool.run({"pattern": "x", "output_mode": "content"}, ToolContext(cwd=tmp_path))
    assert not result.is_error and "more characters" in result.content
    assert time.monotonic() - t0 < 5
