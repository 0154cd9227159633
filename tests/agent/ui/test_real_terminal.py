"""The real `godwit` in a real terminal (tmux), one whole flow: prompt, approval, the edit
shown with its diff, Esc Esc, restore, undo, quit (with the resume hint), `--continue`.

Nothing is driven from inside the process: keys go in through tmux and the screen is read back
with capture-pane, as a person would see it. The model is the scripted provider from a file.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ORIGINAL = "def answer():\n    return 41\n"
FIXED = "def answer():\n    return 42\n"
EDIT = {
    "name": "str_replace_based_edit_tool",
    "input": {
        "command": "str_replace",
        "path": "app.py",
        "old_str": "return 41",
        "new_str": "return 42",
    },
}

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Terminal:
    """One tmux session on a private server socket, 80x24."""

    def __init__(self, tmp: Path, name: str) -> None:
        self.socket, self.name = str(tmp / f"tmux-{name}"), name

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-S", self.socket, *args], capture_output=True, text=True, timeout=20
        ).stdout

    def start(self, command: str, cwd: Path, env: dict[str, str]) -> None:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        # The shell stays after godwit exits, so what it printed last can be read.
        script = f"cd {shlex.quote(str(cwd))} && env {exports} {command}; echo EXITED=$?; sleep 60"
        self.tmux("new-session", "-d", "-s", self.name, "-x", "80", "-y", "24", script)

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.tmux("send-keys", "-t", self.name, *(["-l"] if literal else []), *keys)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def wait(self, pattern: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if re.search(pattern, text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"{pattern!r} never appeared; the screen:\n{self.screen()}")

    def close(self) -> None:
        self.tmux("kill-server")


def test_whole_flow_in_a_real_terminal(tmp_path, godwit_home):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "app.py").write_text(ORIGINAL)
    model = tmp_path / "script.json"
    model.write_text(
        json.dumps(
            [{"text": "Fixing it.", "tool_calls": [EDIT]}, {"text": "Fixed: it returns 42 now."}]
        )
    )
    env = {
        "PYTHONPATH": str(ROOT),
        "GODWIT_HOME": str(godwit_home),
        "TERM": "xterm-256color",
        "PATH": os.environ["PATH"],
    }
    godwit = f"{shlex.quote(sys.executable)} -m agent.cli --model scripted:{model}"
    term = Terminal(tmp_path, "first")
    try:
        term.start(godwit, repo, env)
        term.wait(r"Ask Godwit")
        term.keys("make answer() return 42", literal=True)
        term.keys("Enter")
        # The approval dialog names the file and shows the change at its real line.
        screen = term.wait(r"Edit app\.py\?")
        assert "@@ -1,2 +1,2 @@" in screen and "+    return 42" in screen
        assert re.search(r"No \(n", screen), "the No button is cut at 80 columns"
        term.keys("y")
        screen = term.wait(r"Fixed: it returns 42")
        assert "+    return 42" in screen and "allowed by you" in screen
        assert (repo / "app.py").read_text() == FIXED
        assert re.search(r"ctx", screen.splitlines()[-1]), "the status bar lost the context figure"
        # Esc Esc: the picker; the first checkpoint (before the prompt), both restored.
        term.keys("Escape")
        time.sleep(0.3)
        term.keys("Escape")
        term.wait(r"Rewind to a checkpoint")
        for _ in range(3):
            term.keys("Up")
            time.sleep(0.1)
        term.keys("b")
        term.wait(r"restored to checkpoint")
        assert (repo / "app.py").read_text() == ORIGINAL
        # The rewound prompt is back in the input box, to edit and resend; ctrl+c clears it.
        term.wait(r"│ make answer\(\) return 42")
        term.keys("C-c")
        time.sleep(0.3)
        term.keys("/undo", literal=True)
        term.keys("Enter")
        screen = term.wait(r"Undid the rewind")
        assert (repo / "app.py").read_text() == FIXED
        assert "allowed by you" in screen, "the redrawn transcript lost the permission line"
        term.keys("C-d")
        screen = term.wait(r"EXITED=0")
        sid = re.search(r"godwit --resume ([\w-]+)", screen)
        assert sid and "godwit --continue" in screen, screen
    finally:
        term.close()

    again = Terminal(tmp_path, "again")
    try:
        again.start(f"{godwit} --continue", repo, env)
        screen = again.wait(r"resumed session")
        assert sid.group(1) in screen
        # The earlier replies come back (Markdown is drawn a moment after the rest).
        screen = again.wait(r"Fixed: it returns 42")
        assert "✓ allowed by you" in screen
        again.keys("C-d")
        again.wait(r"EXITED=0")
    finally:
        again.close()

    # `godwit --resume` without an id: the same session picker as /resume.
    picker = Terminal(tmp_path, "picker")
    try:
        picker.start(f"{godwit} --resume", repo, env)
        picker.wait(r"Resume a session")
        assert "make answer() return 42" in picker.screen()
        picker.keys("Enter")
        screen = picker.wait(r"resumed session")
        assert sid.group(1) in screen
        picker.keys("C-d")
        picker.wait(r"EXITED=0")
    finally:
        picker.close()
