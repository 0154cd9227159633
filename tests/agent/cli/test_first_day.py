"""What a first day with Godwit turned up (issue 13), through the real `godwit` command.

Each test runs `python -m agent.cli` in a subprocess on a real git repository, with the
scripted provider (`scripted:FILE`) or the fake Messages API server on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.replies import say

GODWIT = [sys.executable, "-m", "agent.cli"]
ROOT = Path(__file__).resolve().parents[3]
CALC = (
    "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a + b\n\n\nprint(sub(3, 1))\n"
)
FIX_SUB = {
    "name": "str_replace_based_edit_tool",
    "input": {
        "command": "str_replace",
        "path": "calc.py",
        "old_str": "def sub(a, b):\n    return a + b",
        "new_str": "def sub(a, b):\n    return a - b",
    },
}


def godwit(*args, cwd, input=None, timeout=90, env=None):
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [*GODWIT, *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full,
    )


def script(tmp_path: Path, turns, name="s.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(turns))
    return f"scripted:{path}"


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "calc.py").write_text(CALC)
    return root


def session_logs(home: Path) -> list[Path]:
    return sorted((home / "sessions").glob("*/*.jsonl"))


# -- 1. sessions exist once something was sent; --continue takes the newest with turns ---------


def test_opening_and_quitting_without_a_prompt_leaves_no_session(repo, tmp_path, godwit_home):
    first = godwit(
        "-p",
        "remember the word heron",
        "--model",
        script(tmp_path, [{"text": "Noted: heron."}]),
        cwd=repo,
    )
    assert first.returncode == 0, first.stderr
    assert len(session_logs(godwit_home)) == 1
    # The interactive session (line mode without a terminal), quit at once with EOF.
    quit_at_once = godwit("--model", script(tmp_path, [], "none.json"), cwd=repo, input="")
    assert quit_at_once.returncode == 0, quit_at_once.stderr
    assert len(session_logs(godwit_home)) == 1, "a session that was never used was written"
    again = godwit(
        "--continue",
        "-p",
        "which word?",
        "--model",
        script(tmp_path, [{"text": "heron"}], "again.json"),
        cwd=repo,
    )
    assert again.returncode == 0, again.stderr
    rows = json.loads(godwit("sessions", "--json", cwd=repo).stdout)
    assert len(rows) == 1 and rows[0]["turns"] == 2


def test_a_failed_start_leaves_nothing_and_listings_still_work(repo, godwit_home):
    failed = godwit("-p", "hi", cwd=repo)  # the default model, and no API key
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert session_logs(godwit_home) == []
    for listing in (["checkpoints"], ["checkpoints", "--json"], ["sessions"]):
        out = godwit(*listing, cwd=repo)
        assert out.returncode == 0, (listing, out.stderr)


def test_continue_skips_empty_and_broken_newer_logs(repo, tmp_path, godwit_home):
    first = godwit(
        "-p", "remember the word heron", "--model", script(tmp_path, [{"text": "Noted."}]), cwd=repo
    )
    assert first.returncode == 0, first.stderr
    (log,) = session_logs(godwit_home)
    # What older versions (or a crash at start) leave: a 0-byte log and one with no prompt.
    (log.parent / "20991231-000000-aaaaaa.jsonl").write_bytes(b"")
    started = log.read_text().splitlines()[0].replace(log.stem, "20991231-000001-bbbbbb")
    (log.parent / "20991231-000001-bbbbbb.jsonl").write_text(started + "\n")
    os.utime(log, (1, 1))  # the real session is the oldest file
    cps = godwit("checkpoints", "--json", cwd=repo)
    assert cps.returncode == 0, cps.stderr
    again = godwit(
        "--continue",
        "-p",
        "which word?",
        "--output-format",
        "json",
        "--model",
        script(tmp_path, [{"text": "heron"}], "again.json"),
        cwd=repo,
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["session_id"] == log.stem
    listing = godwit("sessions", "--json", cwd=repo)
    assert listing.returncode == 0
    assert [r["id"] for r in json.loads(listing.stdout) if r["turns"]] == [log.stem]


# -- 2. where a session lives ------------------------------------------------------------------


def test_sessions_all_shows_each_sessions_folder(repo, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    for folder in (repo, other):
        out = godwit("-p", "hello", "--model", script(tmp_path, [{"text": "hi"}]), cwd=folder)
        assert out.returncode == 0, out.stderr
    listing = godwit("sessions", "--all", cwd=repo)
    assert listing.returncode == 0
    assert "FOLDER" in listing.stdout
    assert str(repo) in listing.stdout and str(other) in listing.stdout
    rows = json.loads(godwit("sessions", "--all", "--json", cwd=repo).stdout)
    assert {r["cwd"] for r in rows} == {str(repo), str(other)}


def test_line_mode_says_how_to_resume_when_it_ends(repo, tmp_path):
    out = godwit("--model", script(tmp_path, [{"text": "Hello."}]), cwd=repo, input="hi\n")
    assert out.returncode == 0, out.stderr
    sid = re.search(r"godwit --resume ([\w-]+)", out.stdout + out.stderr)
    assert sid, out.stdout
    assert "godwit --continue" in out.stdout + out.stderr


def test_example_resume_hint_works_from_elsewhere(tmp_path):
    env = {"ANTHROPIC_API_KEY": "", "GODWIT_MODEL": ""}
    out = subprocess.run(
        [sys.executable, "examples/run_task.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )
    assert out.returncode == 0, out.stderr
    hint = re.search(r"resume with `([^`]+)`", out.stdout)
    assert hint, out.stdout
    command = hint.group(1) + f" -p 'and now?' --model {script(tmp_path, [{'text': 'ok'}])}"
    resumed = subprocess.run(
        command,
        shell=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        },
    )
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "ok"


# -- 3. headless stdout carries the final answer only ------------------------------------------


def test_text_output_after_a_retry_is_only_the_final_answer(repo, llm_server):
    llm_server.push(
        say("partial answer that is fairly long partial answer", drop_after=5, text_chunk=4),
        say("second try ok"),
    )
    out = godwit(
        "-p",
        "hi",
        "--model",
        "anthropic:claude-sonnet-5-5",
        cwd=repo,
        env={"ANTHROPIC_BASE_URL": llm_server.url, "ANTHROPIC_API_KEY": "k"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "second try ok\n"
    assert "retry" in out.stderr.lower()


# -- 4. empty listings -------------------------------------------------------------------------


def test_empty_listings(repo):
    for listing in (["sessions", "--json"], ["checkpoints", "--json"]):
        out = godwit(*listing, cwd=repo)
        assert out.returncode == 0, (listing, out.stderr)
        assert json.loads(out.stdout) == [], listing
    for listing in (["sessions"], ["checkpoints"]):
        out = godwit(*listing, cwd=repo)
        assert out.returncode == 0 and out.stdout.strip() and not out.stderr, listing
    bad = godwit("checkpoints", "--session", "nosuchsession", "--json", cwd=repo)
    assert bad.returncode == 2  # a real error stays one


# -- 5 and 9. the checkpoint listing and its prune ---------------------------------------------


def _edit_session(repo, tmp_path):
    out = godwit(
        "-p",
        "fix sub",
        "--permission-mode",
        "acceptEdits",
        "--model",
        script(
            tmp_path,
            [
                {"text": "Fixing.", "tool_calls": [FIX_SUB]},
                {"text": "Done."},
                {"text": "Nothing to do."},
            ],
        ),
        cwd=repo,
    )
    assert out.returncode == 0, out.stderr
    out = godwit(
        "--continue",
        "-p",
        "check",
        "--model",
        script(tmp_path, [{"text": "Looks right."}], "t2.json"),
        cwd=repo,
    )
    assert out.returncode == 0, out.stderr


def test_checkpoint_files_column_says_what_a_restore_would_change(repo, tmp_path):
    _edit_session(repo, tmp_path)
    rows = json.loads(godwit("checkpoints", "--json", cwd=repo).stdout)
    by_reason = [(r["reason"], r["restores"]) for r in rows]
    # Turn 1 and the snapshot before the edit hold the old calc.py; turn 2 the fixed one.
    assert by_reason == [
        ("turn_start", ["calc.py"]),
        ("before_tool", ["calc.py"]),
        ("turn_start", []),
    ]
    assert rows[1]["changed"] is False and rows[1]["files"] == []
    text = godwit("checkpoints", cwd=repo).stdout
    lines = [ln for ln in text.splitlines() if ln[:8] in {r["id"] for r in rows}]
    assert "1 file" in lines[0] and "1 file" in lines[1] and "no change" in lines[2]
    assert "str_replace_based_edit_tool" not in text and "edit calc.py" in lines[1]


def test_prune_counts_agree_with_the_listing(repo, tmp_path):
    _edit_session(repo, tmp_path)
    listed = json.loads(godwit("checkpoints", "--json", cwd=repo).stdout)
    out = godwit("checkpoints", "--prune", "--older-than", "0s", "--json", cwd=repo)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert len(report["removed_checkpoints"]) + len(report["kept_checkpoints"]) == len(listed)
    after = json.loads(godwit("checkpoints", "--json", cwd=repo).stdout)
    assert {r["id"] for r in after if not r["has_code"]} == set(report["removed_checkpoints"])
    assert {r["id"] for r in after if r["has_code"]} == set(report["kept_checkpoints"])
    text = godwit("checkpoints", "--prune", "--older-than", "0s", cwd=repo).stdout
    assert f"{len(listed)} checkpoints" in text


# -- 6. help ------------------------------------------------------------------------------------


def test_output_format_has_help_text(repo):
    out = godwit("--help", cwd=repo)
    block = out.stdout[out.stdout.index("\n  --output-format") :]
    block = block[: block.index("\n  -", 3)]  # up to the next option
    assert "stream-json" in block and "JSON" in block and "answer" in block


# -- 7, 8 and 10. what line mode and --verbose show for an edit -------------------------------


def test_verbose_shows_the_edit_with_its_real_line_numbers(repo, tmp_path):
    out = godwit(
        "-p",
        "fix sub",
        "--verbose",
        "--permission-mode",
        "acceptEdits",
        "--model",
        script(tmp_path, [{"text": "Fixing.", "tool_calls": [FIX_SUB]}, {"text": "Done."}]),
        cwd=repo,
    )
    assert out.returncode == 0, out.stderr
    assert "@@ -3,7 +3,7 @@" in out.stdout
    assert "-    return a + b" in out.stdout and "+    return a - b" in out.stdout
    assert "str_replace_based_edit_tool" not in out.stdout


def test_line_mode_approval_shows_path_and_diff(repo, tmp_path):
    new_file = {
        "name": "str_replace_based_edit_tool",
        "input": {"command": "create", "path": "notes.md", "file_text": "# Notes\nfirst\n"},
    }
    out = godwit(
        "--model",
        script(
            tmp_path,
            [
                {"text": "Fixing.", "tool_calls": [FIX_SUB]},
                {"text": "And notes.", "tool_calls": [new_file]},
                {"text": "Done."},
            ],
        ),
        cwd=repo,
        input="fix it\ny\ny\n",
    )
    assert out.returncode == 0, out.stderr
    assert "Edit calc.py?" in out.stdout and "@@ -3,7 +3,7 @@" in out.stdout
    assert "+    return a - b" in out.stdout
    assert "Write notes.md?" in out.stdout and "+# Notes" in out.stdout
    assert "str_replace_based_edit_tool" not in out.stdout
    assert (repo / "notes.md").exists() and "a - b" in (repo / "calc.py").read_text()


# -- 14. `godwit --resume` without an id -------------------------------------------------------


def test_resume_without_an_id_lets_the_user_choose(repo, tmp_path):
    for prompt in ("remember heron", "remember egret"):
        out = godwit("-p", prompt, "--model", script(tmp_path, [{"text": "Noted."}]), cwd=repo)
        assert out.returncode == 0, out.stderr
    rows = json.loads(godwit("sessions", "--json", cwd=repo).stdout)
    heron = next(r["id"] for r in rows if r["first_prompt"] == "remember heron")
    # Without a terminal the choice is a numbered list read from stdin (newest first).
    out = godwit(
        "--resume",
        "--model",
        script(tmp_path, [{"text": "heron"}], "r.json"),
        cwd=repo,
        input="2\nwhich word?\n",
    )
    assert out.returncode == 0, out.stderr
    assert "remember egret" in out.stdout and "remember heron" in out.stdout
    assert f"session {heron}" in out.stdout
    rows = {r["id"]: r for r in json.loads(godwit("sessions", "--json", cwd=repo).stdout)}
    assert rows[heron]["turns"] == 2 and len(rows) == 2
    headless = godwit("--resume", "-p", "x", cwd=repo)
    assert headless.returncode == 2 and "picker" in headless.stderr
