"""The editor on hostile trees: no write into any .git, checks on the resolved path, and no
link swapped in between the check and the write is followed."""

from __future__ import annotations

import os
import shutil

import pytest

from tools.base import ToolContext
from tools.editor import EditorTool


def run(tool, ctx, **args):
    return tool.run(args, ctx)


@pytest.fixture
def setup(tmp_path):
    root = tmp_path / "work"
    (root / ".git" / "hooks").mkdir(parents=True)
    (root / ".git" / "config").write_text("[core]\n")
    (root / ".godwit").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("original\n")
    return root, outside, ToolContext(cwd=root)


def test_no_write_lands_in_any_git_folder(setup, tmp_path):
    root, _, ctx = setup
    ed = EditorTool()
    os.symlink(".git", root / "gl")
    alias = tmp_path / "alias"
    os.symlink(root, alias)
    (root / "x" / ".git").mkdir(parents=True)
    for path in (
        "gl/config",
        "gl/hooks/pre-commit",
        str(alias / ".git" / "config"),
        "x/.git/config",
        "x/.git/hooks/post-checkout",
        ".git/config",
    ):
        for args in (
            {"command": "create", "file_text": "[core]\n\tfsmonitor = touch MARK\n"},
            {"command": "str_replace", "old_str": "[core]", "new_str": "[x]"},
            {"command": "insert", "insert_line": 0, "insert_text": "x"},
        ):
            r = ed.run({**args, "path": path}, ctx)
            assert r.is_error and ".git" in r.content, (path, args, r.content)
    assert (root / ".git" / "config").read_text() == "[core]\n"
    assert not (root / ".git" / "hooks" / "pre-commit").exists()
    assert not (root / "x" / ".git" / "config").exists()
    # Viewing stays allowed.
    assert not ed.run({"command": "view", "path": "gl/config"}, ctx).is_error


def test_a_folder_swapped_for_a_link_after_the_check_is_not_followed(setup):
    root, outside, ctx = setup
    (root / "sub").mkdir()
    (root / "sub" / "victim.txt").write_text("original\n")
    ed = EditorTool()

    def swap():
        shutil.rmtree(root / "sub")
        os.symlink(outside, root / "sub")

    ed.race_hook = swap
    r = ed.run(
        {
            "command": "str_replace",
            "path": "sub/victim.txt",
            "old_str": "original",
            "new_str": "owned",
        },
        ctx,
    )
    assert r.is_error and "symbolic link" in r.content
    assert (outside / "victim.txt").read_text() == "original\n"
    os.unlink(root / "sub")
    (root / "sub").mkdir()
    r = ed.run({"command": "create", "path": "sub/new.txt", "file_text": "x"}, ctx)
    assert r.is_error
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]


def test_a_file_swapped_for_a_link_after_the_check_is_not_followed(setup):
    root, outside, ctx = setup
    (root / "a.txt").write_text("original\n")
    ed = EditorTool()

    def swap():
        os.unlink(root / "a.txt")
        os.symlink(outside / "victim.txt", root / "a.txt")

    ed.race_hook = swap
    r = ed.run(
        {"command": "str_replace", "path": "a.txt", "old_str": "original", "new_str": "owned"}, ctx
    )
    assert r.is_error
    assert (outside / "victim.txt").read_text() == "original\n"
    # create over a link swapped in: the link itself is replaced, its target untouched.
    (root / "b.txt").write_text("b\n")

    def swap_b():
        os.unlink(root / "b.txt")
        os.symlink(outside / "victim.txt", root / "b.txt")

    ed.race_hook = swap_b
    r = ed.run({"command": "create", "path": "b.txt", "file_text": "new\n"}, ctx)
    assert (outside / "victim.txt").read_text() == "original\n"
    assert r.is_error or not (root / "b.txt").is_symlink()


def test_links_inside_the_tree_still_work(setup):
    root, _, ctx = setup
    (root / "src").mkdir()
    (root / "src" / "a.py").write_text("x = 1\n")
    os.symlink("src", root / "s")
    ed = EditorTool()
    r = ed.run(
        {"command": "str_replace", "path": "s/a.py", "old_str": "x = 1", "new_str": "x = 2"}, ctx
    )
    assert not r.is_error, r.content
    assert (root / "src" / "a.py").read_text() == "x = 2\n"
    r = ed.run({"command": "create", "path": "s/deep/er/b.py", "file_text": "y\n"}, ctx)
    assert not r.is_error and (root / "src" / "deep" / "er" / "b.py").read_text() == "y\n"
