"""Ignore rules that differ between the current state and the target: a path the target's
`.gitignore` files ignore was invisible to the target, not "created since"; a restore (and its
preview) must keep it, and restore + undo must give back the tree byte for byte."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from checkpoints import CheckpointStore

from .helpers import bash, diff_states, tree_state, ugit

KEPT = "ignored at the checkpoint: kept"


def _deleted(diff) -> set[str]:
    return {f.path for f in diff.files if f.status == "deleted"}


def _kept(conflicts) -> set[str]:
    return {c.path for c in conflicts if c.reason == KEPT}


def test_rewritten_gitignore_does_not_delete_files_ignored_at_the_checkpoint(project, store):
    bash(
        project,
        "printf 'node_modules/\\n.env\\n' > .gitignore; mkdir node_modules;"
        " echo dep > node_modules/big.js; echo KEY=1 > .env",
    )
    ugit(project, "add", ".gitignore")
    ugit(project, "commit", "-q", "-m", "ignore")
    a = store.snapshot("s", 1, "A", "turn-start")
    files = store._git.run(["ls-tree", "-r", "--name-only", a.commit]).decode().split("\n")
    assert ".env" not in files and "node_modules/big.js" not in files
    bash(project, "echo '# rewritten' > .gitignore")  # .env and node_modules/ now visible
    before = tree_state(project)

    preview = store.diff(a.id)
    assert [(f.path, f.status) for f in preview.files] == [(".gitignore", "modified")]
    assert not _deleted(preview)
    assert _kept(preview.conflicts) == {".env", "node_modules/big.js"}

    res = store.restore(a.id)
    assert (project / ".env").read_text() == "KEY=1\n"
    assert (project / "node_modules" / "big.js").read_text() == "dep\n"
    assert (project / ".gitignore").read_text() == "node_modules/\n.env\n"
    assert [c.path for c in res.changed] == [".gitignore"]
    assert _kept(res.conflicts) == {".env", "node_modules/big.js"}
    assert len(res.conflicts) == 2
    # the pre-restore snapshot holds them (they were not ignored then)
    files = store._git.run(["ls-tree", "-r", "--name-only", res.pre_restore_id]).decode()
    assert ".env" in files.split("\n")

    undo = store.undo_restore()
    assert not undo.conflicts, undo.conflicts  # the ignored files already are what P holds
    now = tree_state(project)
    assert now == before, "\n".join(diff_states(before, now))


def test_ignore_rule_added_later_then_restore_and_undo_keep_the_ignored_file(project, store):
    a = store.snapshot("s", 1, "A", "turn-start")  # no .gitignore
    bash(project, "echo '*.log' > .gitignore; echo 'build output' > build.log")
    before = tree_state(project)

    res = store.restore(a.id)
    assert not (project / ".gitignore").exists()
    assert (project / "build.log").read_text() == "build output\n"  # ignored then: untouched
    assert not res.conflicts

    # undo = restore to the pre-restore snapshot P (has .gitignore, not build.log): build.log
    # is not ignored now, but P's rules ignore it: kept, not deleted.
    preview = store.diff(res.pre_restore_id)
    assert "build.log" not in _deleted(preview)
    assert _kept(preview.conflicts) == {"build.log"}
    undo = store.undo_restore()
    assert _kept(undo.conflicts) == {"build.log"}
    assert "build.log" not in {c.path for c in undo.changed}
    now = tree_state(project)
    assert now == before, "\n".join(diff_states(before, now))

    # and once more, through an explicit restore instead of the undo
    res2 = store.restore(a.id)
    assert (project / "build.log").exists() and not (project / ".gitignore").exists()
    res3 = store.restore(res2.pre_restore_id)
    assert _kept(res3.conflicts) == {"build.log"}
    now = tree_state(project)
    assert now == before, "\n".join(diff_states(before, now))


def test_directory_ignored_at_the_checkpoint_keeps_files_created_since(project, store):
    bash(
        project,
        "printf 'build/\\ncache\\n' > .gitignore; mkdir -p build/sub; echo old > build/old.o",
    )
    a = store.snapshot("s", 1, "A", "turn-start")
    # the agent un-ignores build/ and cache/, then creates files in them (and a normal one)
    bash(
        project,
        "echo '# nothing ignored' > .gitignore; echo new > build/new.o;"
        " echo deep > build/sub/deep.o; mkdir -p src/cache; echo c > src/cache/x;"
        " echo t > tracked.txt",
    )
    before = tree_state(project)
    preview = store.diff(a.id)
    assert _deleted(preview) == {"tracked.txt"}
    kept = {"build/old.o", "build/new.o", "build/sub/deep.o", "src/cache/x"}
    assert _kept(preview.conflicts) == kept

    res = store.restore(a.id)
    assert _kept(res.conflicts) == kept
    assert not (project / "tracked.txt").exists()
    for p in kept:
        assert (project / p).exists(), p
    assert (project / "build" / "sub" / "deep.o").read_text() == "deep\n"

    store.undo_restore()
    now = tree_state(project)
    assert now == before, "\n".join(diff_states(before, now))


def test_nested_gitignore_of_the_target_and_negation(project, store):
    bash(
        project,
        "mkdir -p pkg; printf '*.gen\\n!keep.gen\\n' > pkg/.gitignore;"
        " echo g > pkg/a.gen; echo k > pkg/keep.gen",
    )
    a = store.snapshot("s", 1, "A", "turn-start")
    files = store._git.run(["ls-tree", "-r", "--name-only", a.commit]).decode().split("\n")
    assert "pkg/keep.gen" in files and "pkg/a.gen" not in files
    bash(project, "rm pkg/.gitignore; echo b > pkg/b.gen; echo n > pkg/new.txt")
    before = tree_state(project)
    res = store.restore(a.id)
    assert _kept(res.conflicts) == {"pkg/a.gen", "pkg/b.gen"}
    assert (project / "pkg" / "b.gen").read_text() == "b\n"
    assert not (project / "pkg" / "new.txt").exists()  # created since, not ignored: deleted
    assert (project / "pkg" / ".gitignore").exists()
    store.undo_restore()
    assert tree_state(project) == before


def test_users_info_exclude_applies_to_the_target_rules(project, store):
    (project / ".git" / "info").mkdir(exist_ok=True)
    (project / ".git" / "info" / "exclude").write_text("*.secret\n")
    bash(project, "echo '*.tmp' > .gitignore")
    a = store.snapshot("s", 1, "A", "turn-start")
    # rewriting .gitignore does not change info/exclude: *.secret stays ignored throughout
    bash(project, "echo '# none' > .gitignore; echo s > k.secret; echo t > x.tmp")
    res = store.restore(a.id)
    assert _kept(res.conflicts) == {"x.tmp"}
    assert (project / "k.secret").exists() and (project / "x.tmp").exists()


def test_crash_mid_restore_still_keeps_files_ignored_at_the_checkpoint(project, home):
    store = CheckpointStore(project, home)
    bash(project, "printf '.env\\n' > .gitignore; echo KEY=1 > .env")
    a = store.snapshot("s", 1, "A", "turn-start")
    bash(project, "echo '# rewritten' > .gitignore; for i in 1 2 3 4 5; do echo $i > f$i; done")
    code = (
        "from pathlib import Path; from checkpoints import CheckpointStore;"
        f"CheckpointStore(Path({str(project)!r}), Path({str(home)!r})).restore({a.id!r})"
    )
    env = dict(os.environ, GODWIT_CHECKPOINTS_TEST_KILL_AFTER="3")
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=Path(__file__).resolve().parents[2], check=False
    )
    assert proc.returncode == -9
    res = CheckpointStore(project, home).recover()
    assert res is not None and res.recovered
    assert (project / ".env").read_text() == "KEY=1\n"
    assert (project / ".gitignore").read_text() == ".env\n"
    assert not any((project / f"f{i}").exists() for i in range(1, 6))
    assert not (store.store_dir / "ignore-check").exists()


def test_empty_directories_ignored_at_the_checkpoint_are_kept(project, store):
    bash(project, "printf 'logs/\\ncache/\\n' > .gitignore")
    a = store.snapshot("s", 1, "A", "turn-start")
    bash(project, "echo '# none' > .gitignore; mkdir -p logs/archive cache scratch")
    before = tree_state(project)
    preview = store.diff(a.id)
    assert _kept(preview.conflicts) == {"cache", "logs/archive"}
    assert {(f.path, f.status) for f in preview.files} == {
        (".gitignore", "modified"),
        ("scratch", "deleted"),
    }
    res = store.restore(a.id)
    assert _kept(res.conflicts) == {"cache", "logs/archive"}
    assert {c.path for c in res.changed} == {".gitignore", "scratch"}
    assert (project / "logs" / "archive").is_dir() and (project / "cache").is_dir()
    assert not (project / "scratch").exists()
    store.undo_restore()
    assert tree_state(project) == before
