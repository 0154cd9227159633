"""memory: every command and error, and a hostile-path suite that must not touch anything outside."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from pathlib import Path

import pytest

import tools.memory as memmod
from tools.base import ToolContext
from tools.memory import MEMORY_SYSTEM_PROMPT, MemoryConfig, MemoryTool, memory_root

# -- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def root(home: Path, tmp_path: Path) -> Path:
    project = tmp_path / "My Project"
    project.mkdir()
    return memory_root(home, project)


@pytest.fixture
def mem(root: Path) -> MemoryTool:
    return MemoryTool(root)


@pytest.fixture
def mctx(tmp_path: Path) -> ToolContext:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return ToolContext(cwd=work)


@pytest.fixture
def sentinels(tmp_path: Path, root: Path):
    """Two folders outside the store, one beside it and one far away, with content to protect."""
    root.mkdir(parents=True, exist_ok=True)
    beside = root.parent / "sentinel"
    far = tmp_path / "outside"
    for d in (beside, far):
        (d / "sub").mkdir(parents=True)
        (d / "secret.txt").write_text("top secret\n")
        (d / "sub" / "inner.md").write_text("inner\n")
        os.chmod(d / "secret.txt", 0o644)
    return [beside, far]


def snapshot(d: Path) -> dict[str, tuple]:
    """Everything observable about a folder tree, links not followed."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(d, followlinks=False):
        for name in [".", *dirnames, *filenames]:
            p = Path(dirpath) / name if name != "." else Path(dirpath)
            st = os.lstat(p)
            entry: tuple = (
                stat.S_IFMT(st.st_mode),
                stat.S_IMODE(st.st_mode),
                st.st_size,
                st.st_mtime_ns,
                st.st_ino,
            )
            if stat.S_ISLNK(st.st_mode):
                entry += (os.readlink(p),)
            elif stat.S_ISREG(st.st_mode):
                entry += (hashlib.sha256(p.read_bytes()).hexdigest(),)
            out[str(p.relative_to(d))] = entry
    return out


def call(mem: MemoryTool, ctx: ToolContext, **args):
    return mem.run(args, ctx)


def good(mem, ctx, **args) -> str:
    r = mem.run(args, ctx)
    assert not r.is_error, r.content
    return r.content


def bad(mem, ctx, **args) -> str:
    r = mem.run(args, ctx)
    assert r.is_error, (args, r.content)
    return r.content


# -- memory_root and specs -------------------------------------------------------------------


def test_memory_root(tmp_path):
    home = tmp_path / "h"
    assert memory_root(home, None) == home / "memories" / "global"
    a = tmp_path / "a" / "My Cool_Project!"
    b = tmp_path / "b" / "My Cool_Project!"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    ra, rb = memory_root(home, a), memory_root(home, b)
    assert ra.parent == home / "memories"
    assert ra.name.startswith("my-cool-project-") and len(ra.name.rsplit("-", 1)[1]) == 10
    assert ra != rb
    assert memory_root(home, a) == ra  # stable
    assert memory_root(home, Path("/")).name.startswith("root-")


def test_specs(mem):
    assert mem.anthropic_spec() == {"type": "memory_20250818", "name": "memory"}
    fn = mem.openai_spec()["function"]
    assert fn["name"] == "memory"
    props = fn["parameters"]["properties"]
    assert props["command"]["enum"] == [
        "view",
        "create",
        "str_replace",
        "insert",
        "delete",
        "rename",
    ]
    assert set(props) == {
        "command",
        "path",
        "view_range",
        "file_text",
        "old_str",
        "new_str",
        "insert_line",
        "insert_text",
        "old_path",
        "new_path",
    }
    assert mem.is_read_only({"command": "view", "path": "/memories"})
    assert not mem.is_read_only({"command": "create", "path": "/memories/x"})
    assert "/memories" in MEMORY_SYSTEM_PROMPT and "memory" in MEMORY_SYSTEM_PROMPT


# -- commands --------------------------------------------------------------------------------


def test_view_empty_and_listing(mem, mctx, root):
    out = good(mem, mctx, command="view", path="/memories")
    assert "2 levels deep in /memories" in out and "(empty)" in out
    good(mem, mctx, command="create", path="/memories/notes.md", file_text="hello\n")
    good(mem, mctx, command="create", path="/memories/proj/plan.md", file_text="x" * 2048)
    good(mem, mctx, command="create", path="/memories/proj/deep/three.md", file_text="3")
    (root / ".hidden").write_text("h")
    out = good(mem, mctx, command="view", path="/memories/")
    lines = out.splitlines()
    assert "6B\t/memories/notes.md" in lines
    assert "2.0K\t/memories/proj/plan.md" in lines
    assert any(l.endswith("\t/memories/proj/") for l in lines)
    assert any(l.endswith("\t/memories/proj/deep/") for l in lines)
    assert not any("three.md" in l for l in lines)  # level 3
    assert not any("hidden" in l for l in lines[1:])
    sub = good(mem, mctx, command="view", path="/memories/proj")
    assert "/memories/proj/deep/three.md" in sub


def test_view_file_and_range(mem, mctx):
    good(mem, mctx, command="create", path="/memories/n.md", file_text="a\nb\nc\n")
    assert good(mem, mctx, command="view", path="/memories/n.md").endswith(
        "     1\ta\n     2\tb\n     3\tc"
    )
    assert good(mem, mctx, command="view", path="/memories/n.md", view_range=[2, -1]).endswith(
        "     2\tb\n     3\tc"
    )
    assert "past the end" in bad(
        mem, mctx, command="view", path="/memories/n.md", view_range=[9, 10]
    )
    assert "only applies to files" in bad(
        mem, mctx, command="view", path="/memories", view_range=[1, 2]
    )


def test_view_missing(mem, mctx):
    assert (
        bad(mem, mctx, command="view", path="/memories/x.md")
        == "The path /memories/x.md does not exist."
    )
    assert (
        bad(mem, mctx, command="view", path="/memories/no/dir/x.md")
        == "The path /memories/no/dir/x.md does not exist."
    )


def test_create_modes_and_overwrite(mem, mctx, root):
    out = good(mem, mctx, command="create", path="/memories/a/b/c.md", file_text="one")
    assert out == "File created successfully at: /memories/a/b/c.md"
    assert (root / "a/b/c.md").read_text() == "one"
    assert stat.S_IMODE(os.stat(root / "a/b/c.md").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(root / "a").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(root / "a/b").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    assert "overwritten" in good(
        mem, mctx, command="create", path="/memories/a/b/c.md", file_text="two"
    )
    assert (root / "a/b/c.md").read_text() == "two"
    assert not [n for n in os.listdir(root / "a/b") if n.startswith(".tmp")]


def test_create_errors(mem, mctx):
    assert "file_text is required" in bad(mem, mctx, command="create", path="/memories/x.md")
    assert "is a directory" in bad(mem, mctx, command="create", path="/memories", file_text="x")
    good(mem, mctx, command="create", path="/memories/f.md", file_text="x")
    msg = bad(mem, mctx, command="create", path="/memories/f.md/g.md", file_text="x")
    assert "/memories/f.md is a file, not a directory" in msg
    good(mem, mctx, command="create", path="/memories/d/x.md", file_text="x")
    assert "is a directory" in bad(mem, mctx, command="create", path="/memories/d", file_text="x")
    assert "path is required" in bad(mem, mctx, command="create", file_text="x")


def test_str_replace(mem, mctx):
    good(mem, mctx, command="create", path="/memories/notes.md", file_text="a\nTODO\nb\nTODO\nc\n")
    msg = bad(
        mem, mctx, command="str_replace", path="/memories/notes.md", old_str="TODO", new_str="done"
    )
    assert msg.startswith(
        "old_str appears 2 times in /memories/notes.md (lines 2, 4); add more context"
    )
    msg = bad(
        mem, mctx, command="str_replace", path="/memories/notes.md", old_str="nope", new_str="x"
    )
    assert "does not appear verbatim in /memories/notes.md" in msg
    out = good(
        mem,
        mctx,
        command="str_replace",
        path="/memories/notes.md",
        old_str="a\nTODO",
        new_str="a\nDONE",
    )
    assert "has been edited" in out and "     2\tDONE" in out
    assert good(mem, mctx, command="view", path="/memories/notes.md").count("TODO") == 1
    good(
        mem, mctx, command="str_replace", path="/memories/notes.md", old_str="TODO\n"
    )  # new_str omitted: delete
    assert "TODO" not in good(mem, mctx, command="view", path="/memories/notes.md")
    assert "old_str is required" in bad(
        mem, mctx, command="str_replace", path="/memories/notes.md", new_str="x"
    )
    assert (
        bad(mem, mctx, command="str_replace", path="/memories/zz.md", old_str="a", new_str="b")
        == "The path /memories/zz.md does not exist."
    )
    assert "is a directory" in bad(
        mem, mctx, command="str_replace", path="/memories", old_str="a", new_str="b"
    )


def test_insert(mem, mctx, root):
    good(mem, mctx, command="create", path="/memories/t.md", file_text="one\ntwo\n")
    good(mem, mctx, command="insert", path="/memories/t.md", insert_line=0, insert_text="zero")
    good(mem, mctx, command="insert", path="/memories/t.md", insert_line=3, insert_text="three\n")
    assert (root / "t.md").read_text() == "zero\none\ntwo\nthree\n"
    msg = bad(mem, mctx, command="insert", path="/memories/t.md", insert_line=9, insert_text="x")
    assert "Invalid insert_line 9" in msg and "/memories/t.md has 4 lines" in msg
    assert "insert_line is required" in bad(
        mem, mctx, command="insert", path="/memories/t.md", insert_text="x"
    )
    assert "insert_text is required" in bad(
        mem, mctx, command="insert", path="/memories/t.md", insert_line=0
    )
    assert "does not exist" in bad(
        mem, mctx, command="insert", path="/memories/u.md", insert_line=0, insert_text="x"
    )


def test_delete(mem, mctx, root):
    good(mem, mctx, command="create", path="/memories/a.md", file_text="x")
    good(mem, mctx, command="create", path="/memories/dir/sub/b.md", file_text="x")
    assert (
        good(mem, mctx, command="delete", path="/memories/a.md")
        == "Successfully deleted /memories/a.md"
    )
    assert not (root / "a.md").exists()
    good(mem, mctx, command="delete", path="/memories/dir")
    assert not (root / "dir").exists()
    assert (
        bad(mem, mctx, command="delete", path="/memories/a.md")
        == "The path /memories/a.md does not exist."
    )
    for p in ("/memories", "/memories/", "/memories//"):
        assert "cannot be deleted" in bad(mem, mctx, command="delete", path=p)
    assert root.is_dir()


def test_rename(mem, mctx, root):
    good(mem, mctx, command="create", path="/memories/draft.md", file_text="d")
    good(mem, mctx, command="create", path="/memories/other.md", file_text="o")
    out = good(
        mem,
        mctx,
        command="rename",
        old_path="/memories/draft.md",
        new_path="/memories/archive/final.md",
    )
    assert out == "Successfully renamed /memories/draft.md to /memories/archive/final.md"
    assert (root / "archive/final.md").read_text() == "d"
    msg = bad(
        mem,
        mctx,
        command="rename",
        old_path="/memories/other.md",
        new_path="/memories/archive/final.md",
    )
    assert "The destination /memories/archive/final.md already exists" in msg
    assert (root / "archive/final.md").read_text() == "d" and (root / "other.md").read_text() == "o"
    good(mem, mctx, command="rename", old_path="/memories/archive", new_path="/memories/old")
    assert (root / "old/final.md").exists()
    good(mem, mctx, command="create", path="/memories/x/y.md", file_text="y")
    assert "already exists" in bad(
        mem, mctx, command="rename", old_path="/memories/x", new_path="/memories/old"
    )
    assert "into itself" in bad(
        mem, mctx, command="rename", old_path="/memories/old", new_path="/memories/old/inner"
    )
    assert "the same" in bad(
        mem, mctx, command="rename", old_path="/memories/old", new_path="/memories/old/"
    )
    assert "cannot be renamed" in bad(
        mem, mctx, command="rename", old_path="/memories", new_path="/memories/z"
    )
    assert "already exists" in bad(
        mem, mctx, command="rename", old_path="/memories/x", new_path="/memories"
    )
    assert (
        bad(mem, mctx, command="rename", old_path="/memories/nope", new_path="/memories/z")
        == "The path /memories/nope does not exist."
    )
    assert "old_path is required" in bad(mem, mctx, command="rename", new_path="/memories/z")
    assert "new_path is required" in bad(mem, mctx, command="rename", old_path="/memories/x")


@pytest.mark.parametrize("is_dir", [False, True])
def test_rename_without_renameat2(mem, mctx, root, monkeypatch, is_dir):
    monkeypatch.setattr(memmod, "_renameat2", None)
    src = "/memories/s" if is_dir else "/memories/s.md"
    good(mem, mctx, command="create", path=src + ("/in.md" if is_dir else ""), file_text="s")
    good(mem, mctx, command="create", path="/memories/taken.md", file_text="t")
    assert "already exists" in bad(
        mem, mctx, command="rename", old_path=src, new_path="/memories/taken.md"
    )
    assert (root / "taken.md").read_text() == "t"
    good(mem, mctx, command="rename", old_path=src, new_path="/memories/moved")
    assert (root / "moved").exists() and not (root / src.split("/")[-1]).exists()
    if not is_dir:
        assert os.stat(root / "moved").st_nlink == 1


def test_size_caps(root, mctx):
    mem = MemoryTool(root, MemoryConfig(max_file_bytes=100, max_total_bytes=250))
    good(mem, mctx, command="create", path="/memories/a.md", file_text="a" * 100)
    msg = bad(mem, mctx, command="create", path="/memories/b.md", file_text="b" * 101)
    assert "at most 100 bytes" in msg and not (root / "b.md").exists()
    msg = bad(
        mem,
        mctx,
        command="str_replace",
        path="/memories/a.md",
        old_str="a" * 100,
        new_str="c" * 101,
    )
    assert "at most 100 bytes" in msg and (root / "a.md").read_text() == "a" * 100
    assert "at most 100 bytes" in bad(
        mem, mctx, command="insert", path="/memories/a.md", insert_line=0, insert_text="x"
    )
    good(mem, mctx, command="create", path="/memories/b.md", file_text="b" * 100)
    msg = bad(mem, mctx, command="create", path="/memories/c.md", file_text="c" * 60)
    assert "over its limit of 250 bytes" in msg and not (root / "c.md").exists()
    good(
        mem, mctx, command="create", path="/memories/b.md", file_text="b" * 90
    )  # replacing frees its old size
    good(mem, mctx, command="create", path="/memories/c.md", file_text="c" * 60)
    (root / "huge.md").write_bytes(b"h" * 500)  # planted from outside the tool
    assert "over the 100-byte limit" in bad(mem, mctx, command="view", path="/memories/huge.md")


def test_default_caps_huge_file(mem, mctx, root):
    msg = bad(mem, mctx, command="create", path="/memories/big.md", file_text="x" * 1_000_001)
    assert "at most 1000000 bytes" in msg and not (root / "big.md").exists()


def test_non_text_files(mem, mctx, root):
    root.mkdir(parents=True, exist_ok=True)
    (root / "b.bin").write_bytes(b"a\x00b")
    (root / "l1.txt").write_bytes(b"caf\xe9")
    os.mkfifo(root / "fifo")
    assert "binary" in bad(mem, mctx, command="view", path="/memories/b.bin")
    assert "not UTF-8" in bad(mem, mctx, command="view", path="/memories/l1.txt")
    assert "not a regular file" in bad(
        mem, mctx, command="view", path="/memories/fifo"
    )  # and does not block


def test_invalid_args(mem, mctx):
    r = call(mem, mctx, command="explode", path="/memories")
    assert r.is_error and r.content.startswith("Invalid input for memory")
    assert call(mem, mctx, command="view", path="/memories", extra=1).is_error
    assert "path is required" in bad(mem, mctx, command="view")


def test_concurrent_writes_keep_store_consistent(mem, mctx, root):
    def worker(i: int) -> None:
        for j in range(10):
            mem.run(
                {"command": "create", "path": f"/memories/t{i}/f{j}.md", "file_text": f"{i}-{j}"},
                mctx,
            )

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(len(os.listdir(root / f"t{i}")) for i in range(4)) == 40


# -- hostile paths ---------------------------------------------------------------------------

HOSTILE = [
    "/memories/../sentinel/secret.txt",
    "/memories/../../outside/secret.txt",
    "/memories/a/../../sentinel/secret.txt",
    "/memories/..",
    "/memories/../",
    "/memories/./../sentinel",
    "../sentinel/secret.txt",
    "sentinel/secret.txt",
    "memories/notes.md",
    "/etc/passwd",
    "/sentinel/secret.txt",
    "/memoriesx/secret.txt",
    "/Memories/notes.md",
    "//memories/notes.md",
    "/memories/%2e%2e/sentinel/secret.txt",
    "/memories/%2E%2E%2Fsentinel%2Fsecret.txt",
    "/memories/..%2fsentinel%2fsecret.txt",
    "/memories/%252e%252e%252fsentinel",
    "/memories/%c0%ae%c0%ae/sentinel",
    "/memories/\uff0e\uff0e/sentinel/secret.txt",  # fullwidth full stops
    "/memories/\uff0e\uff0e\uff0fsentinel\uff0fsecret.txt",  # fullwidth solidus
    "/memories/\u2024\u2024/sentinel/secret.txt",  # one-dot leader
    "/memories/\u2025/sentinel/secret.txt",  # two-dot leader
    "/memories/..\u2215sentinel\u2215secret.txt",  # division slash
    "/memories/..\u2044sentinel",  # fraction slash
    "/memories/\ufe52\ufe52/sentinel",  # small full stop
    "/memories/..\\sentinel\\secret.txt",
    "\\memories\\..\\sentinel",
    "/memories/notes.md\x00.txt",
    "/memories/\x00",
    "/memories/.hidden",
    "/memories/...",
    "/memories/ notes.md",
    "/memories/notes.md ",
    "/memories/notes\n.md",
    "/memories/notes\t.md",
    "/memories/~/secret",
    "/memories/$HOME/secret",
    "/memories/`id`",
    "/memories/..;/sentinel",
    "/memories/\u202e..",  # right-to-left override
    "/memories/e\u0301.md",  # combining accent
    "file:///memories/notes.md",
    "/memories/" + "a" * 300,
    "/memories/" + "/".join(["d"] * 20) + "/x.md",
    "",
]


def test_hostile_paths_suite(mem, mctx, root, sentinels, tmp_path):
    assert len(HOSTILE) >= 30
    good(mem, mctx, command="create", path="/memories/notes.md", file_text="fine\n")
    good(mem, mctx, command="create", path="/memories/a/x.md", file_text="fine\n")
    before = [snapshot(s) for s in sentinels]
    top_before = sorted(os.listdir(tmp_path)), sorted(os.listdir(root.parent))
    store_before = snapshot(root)
    for p in HOSTILE:
        attempts = [
            {"command": "view", "path": p},
            {"command": "create", "path": p, "file_text": "pwned"},
            {"command": "str_replace", "path": p, "old_str": "top secret", "new_str": "pwned"},
            {"command": "insert", "path": p, "insert_line": 0, "insert_text": "pwned"},
            {"command": "delete", "path": p},
            {"command": "rename", "old_path": p, "new_path": "/memories/stolen.md"},
            {"command": "rename", "old_path": "/memories/notes.md", "new_path": p},
        ]
        for args in attempts:
            r = mem.run(args, mctx)
            assert r.is_error, (p, args["command"], r.content)
            assert "Traceback" not in r.content
    assert [snapshot(s) for s in sentinels] == before
    assert (sorted(os.listdir(tmp_path)), sorted(os.listdir(root.parent))) == top_before
    assert snapshot(root) == store_before  # nothing inside changed either


def test_hostile_messages_are_specific(mem, mctx):
    assert "must start with /memories/" in bad(mem, mctx, command="view", path="/etc/passwd")
    assert "'..' segment" in bad(mem, mctx, command="view", path="/memories/../x")
    assert "percent-encoded" in bad(mem, mctx, command="view", path="/memories/%2e%2e")
    assert "U+FF0E FULLWIDTH FULL STOP" in bad(
        mem, mctx, command="view", path="/memories/\uff0e\uff0e"
    )
    assert "U+2215 DIVISION SLASH" in bad(mem, mctx, command="view", path="/memories/..\u2215x")
    assert "NUL" in bad(mem, mctx, command="view", path="/memories/a\x00")
    assert "backslash" in bad(mem, mctx, command="view", path="/memories\\a")
    assert "levels deep" in bad(mem, mctx, command="view", path="/memories/" + "/".join(["d"] * 20))
    assert "may not start with a dot" in bad(mem, mctx, command="view", path="/memories/.tmp-x")
    assert "starts or ends with a space" in bad(mem, mctx, command="view", path="/memories/ a")
    assert "at most 255" in bad(mem, mctx, command="view", path="/memories/" + "a" * 256)
    assert "U+000A" in bad(mem, mctx, command="view", path="/memories/a\nb")


# -- link tricks -----------------------------------------------------------------------------


def _protected(sentinels):
    return [snapshot(s) for s in sentinels]


def test_symlink_to_outside_dir(mem, mctx, root, sentinels):
    before = _protected(sentinels)
    good(mem, mctx, command="create", path="/memories/mine.md", file_text="m")
    os.symlink(sentinels[0], root / "link")
    for args in [
        {"command": "view", "path": "/memories/link"},
        {"command": "view", "path": "/memories/link/secret.txt"},
        {"command": "create", "path": "/memories/link/new.md", "file_text": "x"},
        {"command": "create", "path": "/memories/link/sub/new.md", "file_text": "x"},
        {
            "command": "str_replace",
            "path": "/memories/link/secret.txt",
            "old_str": "top",
            "new_str": "x",
        },
        {
            "command": "insert",
            "path": "/memories/link/secret.txt",
            "insert_line": 0,
            "insert_text": "x",
        },
        {"command": "delete", "path": "/memories/link/secret.txt"},
        {"command": "delete", "path": "/memories/link/sub"},
        {
            "command": "rename",
            "old_path": "/memories/link/secret.txt",
            "new_path": "/memories/stolen.txt",
        },
        {
            "command": "rename",
            "old_path": "/memories/mine.md",
            "new_path": "/memories/link/mine.md",
        },
    ]:
        msg = bad(mem, mctx, **args)
        assert "symbolic link" in msg, (args, msg)
    listing = good(mem, mctx, command="view", path="/memories")
    assert "/memories/link (symbolic link, not followed)" in listing and "secret" not in listing
    assert _protected(sentinels) == before
    # deleting the link removes the link only
    good(mem, mctx, command="delete", path="/memories/link")
    assert not os.path.lexists(root / "link")
    assert _protected(sentinels) == before


def test_symlink_to_outside_file(mem, mctx, root, sentinels):
    root.mkdir(parents=True, exist_ok=True)
    before = _protected(sentinels)
    os.symlink(sentinels[1] / "secret.txt", root / "s.md")
    for args in [
        {"command": "view", "path": "/memories/s.md"},
        {"command": "str_replace", "path": "/memories/s.md", "old_str": "top", "new_str": "x"},
        {"command": "insert", "path": "/memories/s.md", "insert_line": 0, "insert_text": "x"},
        {"command": "create", "path": "/memories/s.md", "file_text": "x"},
    ]:
        assert "symbolic link" in bad(mem, mctx, **args)
    good(
        mem, mctx, command="rename", old_path="/memories/s.md", new_path="/memories/t.md"
    )  # moves the link itself
    assert os.path.islink(root / "t.md")
    good(mem, mctx, command="delete", path="/memories/t.md")
    assert _protected(sentinels) == before


def test_dangling_symlink(mem, mctx, root, sentinels):
    root.mkdir(parents=True, exist_ok=True)
    before = _protected(sentinels)
    target = sentinels[0] / "created_by_escape.md"
    os.symlink(target, root / "dangling.md")
    os.symlink(sentinels[0] / "newdir", root / "danglingdir")
    assert "symbolic link" in bad(
        mem, mctx, command="create", path="/memories/dangling.md", file_text="x"
    )
    assert "symbolic link" in bad(
        mem, mctx, command="create", path="/memories/danglingdir/x.md", file_text="x"
    )
    assert "symbolic link" in bad(mem, mctx, command="view", path="/memories/dangling.md")
    assert not target.exists() and not (sentinels[0] / "newdir").exists()
    assert _protected(sentinels) == before


def test_memory_root_is_a_symlink(tmp_path, mctx, sentinels):
    link_root = tmp_path / "home2" / "memories" / "proj"
    link_root.parent.mkdir(parents=True)
    os.symlink(sentinels[1], link_root)
    before = _protected(sentinels)
    mem = MemoryTool(link_root)
    assert "symbolic link" in bad(mem, mctx, command="view", path="/memories")
    assert "symbolic link" in bad(mem, mctx, command="create", path="/memories/x.md", file_text="x")
    assert _protected(sentinels) == before


def test_hard_link_from_outside(mem, mctx, root, sentinels):
    """Limits: the kernel cannot say where a hard link's other names are, so any file with
    st_nlink > 1 is not read or edited; overwriting it replaces the name, not the inode."""
    root.mkdir(parents=True, exist_ok=True)
    os.link(sentinels[0] / "secret.txt", root / "hl.md")
    before = _protected(sentinels)
    assert "hard links" in bad(mem, mctx, command="view", path="/memories/hl.md")
    assert "hard links" in bad(
        mem, mctx, command="str_replace", path="/memories/hl.md", old_str="top", new_str="x"
    )
    assert "hard links" in bad(
        mem, mctx, command="insert", path="/memories/hl.md", insert_line=0, insert_text="x"
    )
    good(mem, mctx, command="create", path="/memories/hl.md", file_text="mine now")
    assert (root / "hl.md").read_text() == "mine now"
    assert (sentinels[0] / "secret.txt").read_text() == "top secret\n"
    after = _protected(sentinels)
    # only the link count of the outside inode changed (it lost our name)
    assert {k: v[:2] + v[3:] for k, v in after[0].items()} == {
        k: v[:2] + v[3:] for k, v in before[0].items()
    }
    assert after[1] == before[1]


# -- races: a symlink swapped in between the check and the use -------------------------------


def _swap_to_link(dir_fd: int, name: str, target: Path) -> None:
    """Replace `name` (in dir_fd) by a symlink to `target`, keeping the original aside."""
    os.rename(name, name + ".orig", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    os.symlink(target, name, dir_fd=dir_fd)


def test_race_directory_swapped_for_link(mem, mctx, root, sentinels):
    good(mem, mctx, command="create", path="/memories/sub/a.md", file_text="a")
    before = _protected(sentinels)
    fired = []

    def hook(dir_fd: int, name: str) -> None:
        if name == "sub" and not fired:
            fired.append(name)
            _swap_to_link(dir_fd, name, sentinels[0])

    mem._race_hook = hook  # type: ignore[method-assign]
    msg = bad(mem, mctx, command="create", path="/memories/sub/new.md", file_text="escape")
    assert fired and "symbolic link" in msg
    assert _protected(sentinels) == before


@pytest.mark.parametrize("command", ["view", "str_replace", "insert"])
def test_race_file_swapped_for_link_on_read(mem, mctx, root, sentinels, command):
    good(mem, mctx, command="create", path="/memories/f.md", file_text="top secret\n")
    before = _protected(sentinels)
    fired = []

    def hook(dir_fd: int, name: str) -> None:
        if name == "f.md" and not fired:
            fired.append(name)
            _swap_to_link(dir_fd, name, sentinels[0] / "secret.txt")

    mem._race_hook = hook  # type: ignore[method-assign]
    args = {
        "view": {"path": "/memories/f.md"},
        "str_replace": {"path": "/memories/f.md", "old_str": "top", "new_str": "pwned"},
        "insert": {"path": "/memories/f.md", "insert_line": 0, "insert_text": "pwned"},
    }[command]
    msg = bad(mem, mctx, command=command, **args)
    assert fired and "symbolic link" in msg
    assert _protected(sentinels) == before


def test_race_link_swapped_in_before_rename_of_write(mem, mctx, root, sentinels):
    """The temp file is renamed over the name: a link put there at the last moment is replaced."""
    good(mem, mctx, command="create", path="/memories/w.md", file_text="old")
    before = _protected(sentinels)
    fired = []

    def hook(dir_fd: int, name: str) -> None:
        # the hook runs before the read's open and again before the write's rename: take the second
        if name == "w.md":
            fired.append(name)
            if len(fired) == 2:
                os.unlink(name, dir_fd=dir_fd)
                os.symlink(sentinels[0] / "secret.txt", name, dir_fd=dir_fd)

    mem._race_hook = hook  # type: ignore[method-assign]
    good(mem, mctx, command="str_replace", path="/memories/w.md", old_str="old", new_str="new")
    assert len(fired) == 2
    assert not os.path.islink(root / "w.md") and (root / "w.md").read_text() == "new"
    assert _protected(sentinels) == before


def test_race_destination_appears_during_rename(mem, mctx, root, sentinels):
    good(mem, mctx, command="create", path="/memories/src.md", file_text="s")

    def hook(dir_fd: int, name: str) -> None:
        if name == "dst.md":
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dir_fd)
            os.write(fd, b"planted")
            os.close(fd)

    mem._race_hook = hook  # type: ignore[method-assign]
    msg = bad(mem, mctx, command="rename", old_path="/memories/src.md", new_path="/memories/dst.md")
    assert "already exists" in msg
    assert (root / "dst.md").read_text() == "planted" and (root / "src.md").read_text() == "s"


def test_race_during_recursive_delete(mem, mctx, root, sentinels):
    good(mem, mctx, command="create", path="/memories/tree/inner/a.md", file_text="a")
    before = _protected(sentinels)

    def hook(dir_fd: int, name: str) -> None:
        if name == "inner":
            _swap_to_link(dir_fd, name, sentinels[0])

    mem._race_hook = hook  # type: ignore[method-assign]
    msg = bad(mem, mctx, command="delete", path="/memories/tree")
    assert "symbolic link" in msg
    assert _protected(sentinels) == before


def test_race_file_swapped_before_unlink(mem, mctx, root, sentinels):
    good(mem, mctx, command="create", path="/memories/del.md", file_text="d")
    before = _protected(sentinels)

    def hook(dir_fd: int, name: str) -> None:
        if name == "del.md":
            _swap_to_link(dir_fd, name, sentinels[0] / "secret.txt")

    mem._race_hook = hook  # type: ignore[method-assign]
    good(mem, mctx, command="delete", path="/memories/del.md")  # removes the link that is there now
    assert not os.path.lexists(root / "del.md")
    assert _protected(sentinels) == before
