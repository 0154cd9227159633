"""The public API: ids and prefixes, metadata, diff preview, undo stack, prune, durations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from checkpoints import (
    CheckpointError,
    CheckpointNotFound,
    CheckpointStore,
    InvalidDuration,
    NothingToUndo,
    parse_duration,
)

from .helpers import REPO_ROOT, bash, tree_state


def refs(store: CheckpointStore) -> list[str]:
    return store._git.run(["for-each-ref", "--format=%(refname)"]).decode().split()


def test_layout_one_shadow_repo_per_project(project: Path, home: Path, tmp_path: Path):
    store = CheckpointStore(project, home)
    assert store.store_dir.parent == home / "checkpoints"
    assert store.store_dir.name.startswith("project-")
    assert (store.store_dir / "git" / "HEAD").is_file()
    assert CheckpointStore(project, home).store_dir == store.store_dir
    other = tmp_path / "other" / "project"
    other.mkdir(parents=True)
    assert CheckpointStore(other, home).store_dir != store.store_dir


def test_unchanged_snapshot_adds_no_commit(store: CheckpointStore, project: Path):
    cp = store.snapshot("s", 1, "first", "turn-start")
    assert not cp.unchanged
    again = store.snapshot("s", 1, "first", "before-tool")
    assert again.unchanged and again.id == cp.id
    assert len(refs(store)) == 1
    # a fresh store object (another process) agrees
    assert CheckpointStore(project, store.store_dir.parents[1]).snapshot("s", 2, "", "").unchanged
    (project / "README.md").write_text("changed\n")
    assert not store.snapshot("s", 2, "", "").unchanged
    assert len(refs(store)) == 2


def test_checkpoint_metadata(store: CheckpointStore, project: Path):
    cp1 = store.snapshot("sess-1", 1, "add a feature", "turn-start")
    assert cp1.session_id == "sess-1" and cp1.turn == 1 and cp1.label == "add a feature"
    assert cp1.parent is None and cp1.files_changed == 2 and cp1.store_size > 0
    bash(project, "printf 'a\\nb\\nc\\n' >> README.md; rm src/app.py; printf '\\0bin' > x.bin")
    cp2 = store.snapshot("sess-1", 2, "second", "before-tool")
    by_path = {f.path: f for f in cp2.files}
    assert cp2.parent == cp1.id
    assert by_path["README.md"].status == "modified"
    assert (by_path["README.md"].added_lines, by_path["README.md"].deleted_lines) == (3, 0)
    assert by_path["src/app.py"].status == "deleted" and by_path["src/app.py"].deleted_lines == 1
    assert by_path["x.bin"].binary and by_path["x.bin"].added_lines is None
    assert (cp2.lines_added, cp2.lines_deleted) == (3, 1)
    data = json.loads(cp2.model_dump_json())
    assert data["id"] == cp2.id and datetime.fromisoformat(data["created"]).tzinfo is not None
    # the listing is what `godwit checkpoints --json` prints
    listing = [json.loads(c.model_dump_json()) for c in store.list()]
    assert [c["id"] for c in listing] == [cp1.id, cp2.id]
    assert store.list(session_id="nobody") == []
    assert store.size_bytes() > 0


def test_get_by_prefix_and_errors(store: CheckpointStore):
    cp = store.snapshot("s", 1, "", "")
    assert store.get(cp.id[:5]).id == cp.id
    assert store.get(cp.commit).id == cp.id
    assert len(cp.id) == 12
    with pytest.raises(CheckpointNotFound):
        store.get("0000000")
    with pytest.raises(CheckpointNotFound):
        store.restore("zzzz")
    with pytest.raises(CheckpointError):
        store.get("")


def test_diff_preview(store: CheckpointStore, project: Path):
    os.symlink("README.md", project / "link")
    (project / "mode.sh").write_text("#!/bin/sh\n")
    (project / "private").write_text("p\n")
    os.chmod(project / "private", 0o600)
    cp = store.snapshot("s", 1, "", "")
    bash(
        project,
        "echo more >> README.md; rm src/app.py; echo n > new.txt; chmod +x mode.sh;"
        " chmod 644 private; rm link; echo file > link",
    )
    before = tree_state(project)
    d = store.diff(cp.id)
    assert tree_state(project) == before  # a preview changes nothing
    status = {f.path: f.status for f in d.files}
    assert status == {
        "README.md": "modified",
        "src/app.py": "added",
        "new.txt": "deleted",
        "mode.sh": "mode",
        "private": "mode",
        "link": "type",
    }
    readme = next(f for f in d.files if f.path == "README.md")
    assert readme.patch and "-more" in readme.patch and readme.patch.startswith("diff --git")
    assert "+print('hello')" in d.text()
    assert next(f for f in d.files if f.path == "private").new_mode == "100600"


def test_restore_stack_and_undo(store: CheckpointStore, project: Path):
    with pytest.raises(NothingToUndo):
        store.undo_restore()
    s0 = tree_state(project)
    cp0 = store.snapshot("s", 0, "", "")
    bash(project, "echo 1 > one.txt")
    s1 = tree_state(project)
    cp1 = store.snapshot("s", 1, "", "")
    bash(project, "echo 2 > two.txt")
    s2 = tree_state(project)
    r1 = store.restore(cp0.id)
    assert tree_state(project) == s0
    pre = store.get(r1.pre_restore_id)
    assert pre.reason == "pre-restore"
    store.restore(cp1.id)
    assert tree_state(project) == s1
    assert len(store.restores()) == 2
    store.undo_restore()
    assert tree_state(project) == s0
    store.undo_restore()
    assert tree_state(project) == s2
    with pytest.raises(NothingToUndo):
        store.undo_restore()


def test_prune_drops_old_checkpoints_and_frees_space(store: CheckpointStore, project: Path):
    for i in range(3):
        (project / f"f{i}.bin").write_bytes(os.urandom(200_000))
        store.snapshot("s", i, "", "")
    head = store.snapshot("s", 9, "", "")
    kept = store.prune(timedelta(days=30))
    assert kept.removed == [] and kept.kept == 3
    bash(project, "rm f*.bin")
    store.snapshot("s", 10, "", "")
    res = store.prune(timedelta(0))
    assert len(res.removed) == 3 and res.kept == 1
    assert res.size_after < res.size_before - 400_000
    assert [c.id for c in store.list()] != [head.id]
    assert len(store.list()) == 1


def test_prune_keeps_what_undo_needs(store: CheckpointStore, project: Path):
    cp = store.snapshot("s", 0, "", "")
    bash(project, "echo x > x.txt")
    after = tree_state(project)
    store.restore(cp.id)
    store.prune(timedelta(0))
    store.undo_restore()
    assert tree_state(project) == after


@pytest.mark.parametrize(
    "text,expected",
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        (" 7 days ", timedelta(days=7)),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30", "d", "3 parsecs", "-1d"])
def test_parse_duration_rejects(text):
    with pytest.raises(InvalidDuration):
        parse_duration(text)
    assert issubclass(InvalidDuration, CheckpointError) and issubclass(InvalidDuration, ValueError)


def test_package_imports_no_other_godwit_package():
    code = (
        "import sys, checkpoints; bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'agent', 'tools', 'model', 'kernels'}); print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_work_tree_that_is_not_a_git_repo(tmp_path: Path, home: Path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.txt").write_text("a\n")
    store = CheckpointStore(plain, home)
    cp = store.snapshot("s", 0, "", "")
    (plain / "a.txt").write_text("b\n")
    store.restore(cp.id)
    assert (plain / "a.txt").read_text() == "a\n"


def test_godwit_home_inside_the_project_is_never_captured(project: Path):
    home = project / ".godwit home"
    store = CheckpointStore(project, home)
    cp = store.snapshot("s", 0, "", "")
    files = store._git.run(["ls-tree", "-r", "--name-only", cp.commit]).decode().split("\n")
    assert not any(f.startswith(".godwit home") for f in files) and "README.md" in files
    bash(project, "echo x > new.txt")
    store.snapshot("s", 1, "", "")
    store.restore(cp.id)
    assert (home / "checkpoints").is_dir() and not (project / "new.txt").exists()


def test_would_change_lists_what_each_restore_changes(store: CheckpointStore, project: Path):
    (project / "private").write_text("p\n")
    first = store.snapshot("s", 1, "", "")
    bash(project, "echo more >> README.md; chmod 600 private")
    second = store.snapshot("s", 1, "", "")
    same = store.snapshot("s", 1, "", "")  # nothing changed: the same snapshot comes back
    bash(project, "echo n > new.txt")
    before = tree_state(project)
    found = store.would_change([first.id, second.id, same.id, "0123abcd"])
    assert tree_state(project) == before
    assert found[first.id] == sorted(f.path for f in store.diff(first.id).files)
    assert found[first.id] == ["README.md", "new.txt", "private"]
    assert found[second.id] == found[same.id] == ["new.txt"]
    assert found["0123abcd"] is None
    bash(project, "rm new.txt")
    assert store.would_change([second.id]) == {second.id: []}
