"""The work tree, the user's folder inside it, and folders added with --add-dir."""

from __future__ import annotations

import os

from tools.base import ToolContext
from tools.editor import EditorTool
from tools.search import GlobTool, GrepTool


def make(tmp_path):
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "README.md").write_text("top readme\n")
    (root / "pkg" / "mod.py").write_text("def f():\n    return 1\n")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.md").write_text("needle in the other folder\n")
    return root, other


def test_relative_paths_start_in_the_users_folder_and_reach_the_whole_tree(tmp_path):
    root, _ = make(tmp_path)
    ctx = ToolContext(cwd=root / "pkg", root=root)
    view = EditorTool().run({"command": "view", "path": "mod.py"}, ctx)
    assert not view.is_error and "return 1" in view.content
    up = EditorTool().run({"command": "view", "path": "../README.md"}, ctx)
    assert not up.is_error and "top readme" in up.content
    found = GlobTool().run({"pattern": "**/*.md", "path": str(root)}, ctx)
    assert "../README.md" in found.content
    here = GlobTool().run({"pattern": "*.py"}, ctx)
    assert "mod.py" in here.content and "README" not in here.content


def test_outside_the_tree_is_refused_unless_added(tmp_path):
    root, other = make(tmp_path)
    ctx = ToolContext(cwd=root, root=root)
    refused = EditorTool().run({"command": "view", "path": str(other / "notes.md")}, ctx)
    assert refused.is_error and "outside the work tree" in refused.content
    assert "--add-dir" in refused.content
    added = ToolContext(cwd=root, root=root, extra_dirs=(other,))
    seen = EditorTool().run({"command": "view", "path": str(other / "notes.md")}, added)
    assert not seen.is_error and "needle" in seen.content
    edit = EditorTool().run(
        {
            "command": "str_replace",
            "path": str(other / "notes.md"),
            "old_str": "needle",
            "new_str": "thread",
        },
        added,
    )
    assert not edit.is_error and (other / "notes.md").read_text().startswith("thread")
    grep = GrepTool().run({"pattern": "thread", "path": str(other)}, added)
    assert not grep.is_error and str(other / "notes.md") in grep.content
    # A symbolic link in an added folder that leads elsewhere is still refused.
    os.symlink(tmp_path, other / "escape")
    (tmp_path / "secret.txt").write_text("s\n")
    sneaky = EditorTool().run(
        {"command": "view", "path": str(other / "escape" / "secret.txt")}, added
    )
    assert sneaky.is_error and "symbolic link" in sneaky.content
