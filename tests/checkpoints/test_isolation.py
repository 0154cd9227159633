"""The shadow repository ignores a hostile user git setup: config, env, hooks, filters, LFS."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from checkpoints import CheckpointStore

from .helpers import bash, git_fingerprint, tree_state


@pytest.fixture
def hostile(tmp_path: Path, project: Path, monkeypatch) -> Path:
    """A user environment that would break a naive shadow repo; returns the marker file that
    any hook, filter or tool of it would create."""
    evil = tmp_path / "evil"
    (evil / "hooks").mkdir(parents=True)
    (evil / "home").mkdir()
    marker = evil / "RAN"
    script = f'#!/bin/sh\necho "$0 $*" >> {marker}\n'
    for hook in (
        "pre-commit",
        "post-commit",
        "commit-msg",
        "post-checkout",
        "post-index-change",
        "reference-transaction",
        "pre-auto-gc",
        "post-rewrite",
        "fsmonitor-watchman",
    ):
        (evil / "hooks" / hook).write_text(script)
        os.chmod(evil / "hooks" / hook, 0o755)
    tool = evil / "tool.sh"
    tool.write_text(f"#!/bin/sh\necho tool >> {marker}\nsed 's/a/X/g'\n")
    os.chmod(tool, 0o755)
    (evil / "attributes").write_text("* filter=evil diff=evil\n")
    (evil / "excludes").write_text("*.txt\n*.py\n")
    config = f"""[core]
	hooksPath = {evil / "hooks"}
	autocrlf = true
	eol = crlf
	safecrlf = true
	attributesFile = {evil / "attributes"}
	excludesFile = {evil / "excludes"}
	fsmonitor = {tool}
	symlinks = false
	fileMode = false
	ignoreCase = true
[filter "evil"]
	clean = {tool}
	smudge = {tool}
	required = true
[filter "lfs"]
	clean = {tool}
	smudge = {tool}
	process = {tool}
	required = true
[diff "evil"]
	textconv = {tool}
[diff]
	external = {tool}
[commit]
	gpgSign = true
[gpg]
	program = {tool}
[user]
	useConfigOnly = true
[init]
	templateDir = {evil}
[gc]
	auto = 1
"""
    (evil / "gitconfig").write_text(config)
    (evil / "home" / ".gitconfig").write_text(config)
    monkeypatch.setenv("HOME", str(evil / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(evil / "home"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(evil / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_SYSTEM", str(evil / "gitconfig"))
    monkeypatch.setenv("GIT_DIR", str(project / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(project))
    monkeypatch.setenv("GIT_INDEX_FILE", str(evil / "index-from-env"))
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(evil / "objects"))
    monkeypatch.setenv("GIT_ALTERNATE_OBJECT_DIRECTORIES", str(project / ".git" / "objects"))
    monkeypatch.setenv("GIT_NAMESPACE", "evil")
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", f"'core.hooksPath'='{evil / 'hooks'}'")
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.autocrlf")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "true")
    monkeypatch.setenv("GIT_ATTR_SOURCE", "HEAD")
    monkeypatch.setenv("GIT_EXTERNAL_DIFF", str(tool))
    monkeypatch.setenv("GIT_LITERAL_PATHSPECS", "0")
    monkeypatch.setenv("GIT_ICASE_PATHSPECS", "1")
    (project / ".gitattributes").write_text(
        "* text=auto\n*.bin filter=lfs diff=lfs merge=lfs -text\n*.c filter=evil\n"
    )
    return marker


def test_hostile_user_setup_changes_nothing(project: Path, home: Path, hostile: Path):
    crlf = b"a\r\nbanana\r\n"
    (project / "win.txt").write_bytes(crlf)
    (project / "code.c").write_bytes(b"int a = 'a';\n")
    (project / "weights.bin").write_bytes(b"version https://not-an-lfs-pointer\n" + os.urandom(100))
    (project / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(project / "run.sh", 0o755)
    os.symlink("win.txt", project / "link")
    fp = git_fingerprint(project)
    before = tree_state(project)

    store = CheckpointStore(project, home)
    cp = store.snapshot("s", 1, "hostile", "turn-start")
    tree = store._git.run(["ls-tree", "-r", cp.commit]).decode()
    # excludes of the global config (*.txt, *.py) do not apply; symlinks and modes are git's
    assert "win.txt" in tree and "src/app.py" in tree
    assert "120000 blob" in tree and "100755 blob" in tree
    for name, raw in [("win.txt", crlf), ("code.c", b"int a = 'a';\n")]:
        assert store._git.run(["cat-file", "blob", f"{cp.commit}:{name}"]) == raw

    bash(
        project,
        "printf 'lf only\\n' > win.txt; echo 'int b;' >> code.c; rm weights.bin;"
        " chmod -x run.sh; rm link; echo n > new.txt",
    )
    changed = tree_state(project)
    store.snapshot("s", 2, "changed", "before-tool")
    d = store.diff(cp.id)
    assert {f.path for f in d.files} >= {
        "win.txt",
        "code.c",
        "weights.bin",
        "run.sh",
        "link",
        "new.txt",
    }
    store.restore(cp.id)
    assert tree_state(project) == before
    store.undo_restore()
    assert tree_state(project) == changed
    store.restore(cp.id)
    store.prune(timedelta(0))

    assert not hostile.exists(), hostile.read_text()
    assert git_fingerprint(project) == fp
    evil = hostile.parent
    assert not (evil / "index-from-env").exists()
    assert not (evil / "objects").exists()
    config = (store.store_dir / "git" / "config").read_text()
    assert "hooksPath = /dev/null" in config and "autocrlf = false" in config
    attributes = (store.store_dir / "git" / "info" / "attributes").read_text()
    assert attributes.startswith("* -filter -text")
