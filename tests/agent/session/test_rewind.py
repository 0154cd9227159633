"""Checkpoints taken by a real session (real tools, real bash, real git) and rewinds of code,
conversation or both, from the SDK and the command line, with undo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent import Agent
from agent import events as ev
from agent.errors import UsageError
from agent.providers.scripted import ScriptedProvider
from tests.checkpoints.helpers import git_fingerprint, tree_state

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "app.py").write_text("def f():\n    return 1\n")
    (root / "data.bin").write_bytes(bytes(range(256)) * 4)
    (root / "secret.txt").write_text("token\n")
    os.chmod(root / "secret.txt", 0o600)
    (root / ".gitignore").write_text("build/\n")
    (root / "build").mkdir()
    (root / "build" / "out.o").write_bytes(b"\x7fELF")
    subprocess.run([*git, "add", "app.py", ".gitignore"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    (root / "staged.py").write_text("staged = True\n")
    subprocess.run([*git, "add", "staged.py"], check=True)  # staged, not committed
    (root / "notes.md").write_text("untracked notes\n")  # untracked, existed before
    return root


def session(repo, turns):
    return Agent(cwd=repo, permission_mode="bypassPermissions", provider=ScriptedProvider(turns))


def edit(**args):
    return {"name": "str_replace_based_edit_tool", "input": args}


def bash(command):
    return {"name": "bash", "input": {"command": command}}


TURN_ONE = [
    {
        "tool_calls": [
            edit(command="str_replace", path="app.py", old_str="return 1", new_str="return 2"),
            bash("rm notes.md && mkdir -p pkg/empty && printf 'x\\r\\ny\\r\\n' > pkg/crlf.txt"),
            bash("chmod 755 app.py && ln -s app.py link.py && mv secret.txt secret2.txt"),
        ]
    },
    {"text": "turn one done"},
]
TURN_TWO = [
    {"tool_calls": [bash("rm -rf pkg && echo new > app.py && rm data.bin")]},
    {"text": "turn two done"},
]


def test_rewind_code_conversation_and_both_with_undo(repo):
    original = tree_state(repo)
    git_before = git_fingerprint(repo)
    agent = session(repo, TURN_ONE + TURN_TWO + [{"text": "turn three"}])
    agent.run("first")
    after_one = tree_state(repo)
    agent.run("second")
    after_two = tree_state(repo)
    assert after_two != after_one != original

    turn_starts = [c for c in agent.checkpoints() if c["reason"] == "turn_start"]
    assert [c["turn"] for c in turn_starts] == [1, 2]
    first, second = turn_starts
    assert first["label"] == "first" and first["created"]
    # Checkpoints before every writing tool call too, with the files each changed.
    assert sum(c["reason"] == "before_tool" for c in agent.checkpoints()) == 4

    preview = agent.diff(first["id"])
    assert "app.py" in {f["path"] for f in preview["files"]}
    assert tree_state(repo) == after_two  # a preview changes nothing

    report = agent.rewind(first["id"], restore="code")
    assert tree_state(repo) == original
    assert agent.messages()[-1]["content"][0]["text"] == "turn two done"  # conversation kept
    agent.undo_rewind()
    assert tree_state(repo) == after_two

    agent.rewind(second["id"], restore="both")
    assert tree_state(repo) == after_one
    texts = [b.get("text") for m in agent.messages() for b in m["content"]]
    assert "second" not in texts and texts[-1] == "turn one done"
    # The next prompt continues from the restored conversation.
    agent.run("third")
    sent = agent.runtime().provider.requests[-1].messages
    assert [b.text for b in sent[-1].content] == ["third"]
    assert "second" not in json.dumps([m.model_dump() for m in sent])

    # The user's own .git (index with its staged change, HEAD, refs, config) never changed.
    assert git_fingerprint(repo) == git_before
    status = subprocess.run(
        ["git", "-C", str(repo), "diff", "--cached", "--name-only"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert status == ["staged.py"]
    assert (repo / "build" / "out.o").read_bytes() == b"\x7fELF"  # ignored: untouched
    assert report["saved_checkpoint"]


def test_conversation_only_rewind_and_undo(repo):
    agent = session(repo, [{"text": "one"}, {"text": "two"}])
    agent.run("first")
    agent.run("second")
    before = agent.messages()
    second = next(c for c in agent.checkpoints() if c["turn"] == 2)
    state = tree_state(repo)
    agent.rewind(second["id"], restore="conversation")
    assert len(agent.messages()) == 2 and tree_state(repo) == state
    agent.undo_rewind()
    assert agent.messages() == before
    with pytest.raises(UsageError, match="Nothing to undo"):
        agent.undo_rewind()
    with pytest.raises(UsageError, match="No checkpoint"):
        agent.rewind("zzzz")
    with pytest.raises(UsageError, match="restore must be"):
        agent.rewind(second["id"], restore="everything")


def test_rewind_is_logged_and_survives_resume(repo):
    agent = session(repo, TURN_ONE + [{"text": "two"}])
    agent.run("first")
    agent.run("second")
    target = next(c for c in agent.checkpoints() if c["turn"] == 2)
    agent.rewind(target["id"], restore="both")
    expected = agent.messages()
    sid = agent.session_id
    agent.close()
    again = Agent.resume(sid, cwd=repo, provider=ScriptedProvider([]))
    assert again.messages() == expected
    assert any(isinstance(e, ev.Rewind) for e in again.events)


def godwit(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_headless_session_checkpoints_from_the_command_line(repo, tmp_path):
    script = tmp_path / "s.json"
    script.write_text(
        json.dumps(
            [{"tool_calls": [bash("echo changed > app.py && touch new.txt")]}, {"text": "done"}]
        )
    )
    original = tree_state(repo)
    run = godwit(
        "-p",
        "change things",
        "--model",
        f"scripted:{script}",
        "--permission-mode",
        "bypassPermissions",
        cwd=repo,
    )
    assert run.returncode == 0, run.stderr
    changed = tree_state(repo)
    rows = json.loads(godwit("checkpoints", "--json", cwd=repo).stdout)
    assert rows and {"id", "created", "turn", "label"} <= set(rows[0])
    assert rows[0]["store_size_bytes"] > 0
    first = rows[0]["id"]
    diff = godwit("diff", first, cwd=repo)
    assert diff.returncode == 0 and "app.py" in diff.stdout
    rew = godwit("rewind", first, "--code", cwd=repo)
    assert rew.returncode == 0, rew.stderr
    assert tree_state(repo) == original
    undo = godwit("undo-rewind", cwd=repo)
    assert undo.returncode == 0, undo.stderr
    assert tree_state(repo) == changed
    bad = godwit("rewind", "nope", cwd=repo)
    assert bad.returncode == 2 and "No checkpoint" in bad.stderr
    table = godwit("checkpoints", cwd=repo)
    assert first in table.stdout and "Store size" in table.stdout
    pruned = godwit("checkpoints", "--prune", "--older-than", "30d", cwd=repo)
    assert pruned.returncode == 0 and "Removed 0" in pruned.stdout
    bad_age = godwit("checkpoints", "--prune", "--older-than", "soon", cwd=repo)
    assert bad_age.returncode == 2
