from __future__ import annotations

from pathlib import Path

import pytest

from checkpoints import CheckpointStore

from .helpers import diff_states, tree_state, ugit


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """GODWIT_HOME for the test."""
    h = tmp_path / "godwit-home"
    h.mkdir()
    return h


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project: a git repository with one commit."""
    p = tmp_path / "project"
    p.mkdir()
    ugit(p, "init", "-q", "-b", "main")
    (p / "README.md").write_text("# project\n")
    (p / "src").mkdir()
    (p / "src" / "app.py").write_text("print('hello')\n")
    ugit(p, "add", "-A")
    ugit(p, "commit", "-q", "-m", "initial")
    return p


@pytest.fixture
def store(project: Path, home: Path) -> CheckpointStore:
    return CheckpointStore(project, home)


class Roundtrip:
    """snapshot -> change -> restore -> compare -> undo -> compare, byte for byte and mode
    for mode."""

    def __init__(self, store: CheckpointStore, project: Path):
        self.store = store
        self.project = project

    def __call__(self, change) -> tuple[dict, dict]:
        before = tree_state(self.project)
        cp = self.store.snapshot("sess", 1, "turn one", "turn-start")
        change()
        self.store.snapshot("sess", 2, "turn two", "before-tool")
        after = tree_state(self.project)
        assert after != before, "the change changed nothing"
        res = self.store.restore(cp.id)
        assert not res.conflicts, res.conflicts
        now = tree_state(self.project)
        assert now == before, "\n".join(diff_states(before, now))
        undo = self.store.undo_restore()
        assert undo.checkpoint == res.pre_restore_id
        now = tree_state(self.project)
        assert now == after, "\n".join(diff_states(after, now))
        return before, after


@pytest.fixture
def roundtrip(store: CheckpointStore, project: Path) -> Roundtrip:
    return Roundtrip(store, project)
