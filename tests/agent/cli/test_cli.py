"""The `godwit` command in real subprocesses: headless formats, exit codes, listings, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

GODWIT = [sys.executable, "-m", "agent.cli"]
ROOT = Path(__file__).resolve().parents[3]


def write_script(path: Path, turns) -> str:
    path.write_text(json.dumps(turns))
    return f"scripted:{path}"


def godwit(*args, cwd, input=None, timeout=60):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [*GODWIT, *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "a.txt").write_text("alpha\n")
    return root


def test_every_command_answers_help(repo):
    for cmd in (
        [],
        ["sessions"],
        ["checkpoints"],
        ["rewind"],
        ["undo-rewind"],
        ["diff"],
        ["demo"],
        ["mcp"],
    ):
        out = godwit(*cmd, "--help", cwd=repo)
        assert out.returncode == 0 and "usage: godwit" in out.stdout, cmd


def test_events_first_line_system_last_line_result(repo, tmp_path):
    """Godwit's own event stream (`--output-format events`, what `stream-json` printed before
    stream-json took Claude Code's shapes; those are tested in tests/agent/compat)."""
    model = write_script(
        tmp_path / "s.json",
        [
            {
                "text": "Reading.",
                "tool_calls": [
                    {
                        "name": "str_replace_based_edit_tool",
                        "input": {"command": "view", "path": "a.txt"},
                    }
                ],
            },
            {"text": "It says alpha."},
        ],
    )
    out = godwit("-p", "what is in a.txt?", "--output-format", "events", "--model", model, cwd=repo)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[0]["type"] == "system" and lines[0]["session_id"]
    assert lines[-1]["type"] == "result" and lines[-1]["result"] == "It says alpha."
    assert lines[-1]["is_error"] is False and lines[-1]["num_turns"] == 2
    assert {"input_tokens", "output_tokens"} <= set(lines[-1]["usage"])
    assert "total_cost_usd" in lines[-1]
    types = [line["type"] for line in lines[1:-1]]
    assert {
        "user",
        "text_delta",
        "assistant",
        "tool_call",
        "tool_result",
        "usage",
        "turn_end",
    } <= set(types)


def test_json_and_text_formats_and_stdin_prompt(repo, tmp_path):
    model = write_script(tmp_path / "s.json", [{"text": "Fine."}, {"text": "Again."}])
    out = godwit(
        "-p", "-", "--output-format", "json", "--model", model, cwd=repo, input="prompt from stdin"
    )
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["type"] == "result" and payload["result"] == "Fine."
    assert "context" in payload and payload["context"]["window"] > 0
    model = write_script(tmp_path / "t.json", [{"text": "Plain text answer."}])
    out = godwit("-p", "hi", "--model", model, cwd=repo)
    assert out.returncode == 0 and out.stdout.strip() == "Plain text answer."


def test_exit_codes(repo, tmp_path):
    assert godwit("-p", "x", "--output-format", "yaml", cwd=repo).returncode == 2
    assert godwit("--fork", "-p", "x", cwd=repo).returncode == 2
    bad = godwit("-p", "x", "--model", "nonsense:thing", cwd=repo)
    assert (
        bad.returncode == 2 and "Unknown model spec" in bad.stderr and "Traceback" not in bad.stderr
    )
    nokey = godwit("-p", "x", cwd=repo)  # the default model, no ANTHROPIC_API_KEY
    assert nokey.returncode == 1 and "ANTHROPIC_API_KEY" in nokey.stderr
    assert "Traceback" not in nokey.stderr
    model = write_script(
        tmp_path / "s.json", [{"tool_calls": [{"name": "bash", "input": {"command": "true"}}]}] * 3
    )
    capped = godwit(
        "-p",
        "x",
        "--model",
        model,
        "--max-turns",
        "1",
        "--output-format",
        "json",
        "--permission-mode",
        "bypassPermissions",
        cwd=repo,
    )
    assert capped.returncode == 1 and json.loads(capped.stdout)["subtype"] == "error_max_turns"
    missing = godwit("--resume", "nope", "-p", "x", "--model", model, cwd=repo)
    assert missing.returncode == 2 and "No session" in missing.stderr


def test_sessions_listing_json(repo, tmp_path):
    model = write_script(tmp_path / "s.json", [{"text": "one"}])
    godwit("-p", "first prompt here", "--model", model, cwd=repo)
    out = godwit("sessions", "--json", cwd=repo)
    rows = json.loads(out.stdout)
    assert len(rows) == 1 and rows[0]["first_prompt"] == "first prompt here"
    assert rows[0]["id"] and rows[0]["created"].startswith("20") and rows[0]["turns"] == 1
    table = godwit("sessions", cwd=repo).stdout
    assert rows[0]["id"] in table


def test_sigkill_mid_turn_then_continue(repo, tmp_path):
    model = write_script(
        tmp_path / "s.json",
        [
            {
                "text": "Starting a long command.",
                "tool_calls": [{"name": "bash", "input": {"command": "echo begun; sleep 60"}}],
            },
            {"text": "never reached"},
        ],
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            *GODWIT,
            "-p",
            "run it",
            "--output-format",
            "events",
            "--model",
            model,
            "--permission-mode",
            "bypassPermissions",
        ],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    session_id = None
    deadline = time.monotonic() + 30
    for line in proc.stdout:
        event = json.loads(line)
        session_id = session_id or event.get("session_id")
        if event["type"] == "tool_call":
            time.sleep(0.5)
            os.killpg(proc.pid, signal.SIGKILL)
            break
        assert time.monotonic() < deadline
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    model2 = write_script(tmp_path / "t.json", [{"text": "Resumed fine."}])
    out = godwit(
        "--continue", "-p", "go on", "--output-format", "json", "--model", model2, cwd=repo
    )
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["session_id"] == session_id and payload["result"] == "Resumed fine."
    log = next((Path(os.environ["GODWIT_HOME"]) / "sessions").glob(f"*/{session_id}.jsonl"))
    events = [json.loads(line) for line in log.read_text().splitlines()]
    # The log is intact: the killed turn's prompt and call are there, and the call was never
    # run twice: it was answered by the "interrupted" result built on resume.
    assert [e["type"] for e in events].count("tool_call") == 1
    assert any(e["type"] == "user" and e["text"] == "run it" for e in events)


def test_headless_claude_path_imports_neither_torch_nor_textual(repo, llm_server):
    from tests.fakes.replies import say

    llm_server.push(say("hello"))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ANTHROPIC_API_KEY": "k",
        "ANTHROPIC_BASE_URL": llm_server.url,
    }
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "agent.cli", "-p", "hi"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "hello"
    modules = {
        line.split("|")[-1].strip().split(".")[0]
        for line in out.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "anthropic" in modules
    assert not {"torch", "textual", "triton", "transformers", "mcp"} & modules
