"""`godwit --input-format stream-json --output-format stream-json` in a real subprocess, driven
line by line as the Claude Agent SDK drives Claude Code (no SDK needed for this one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.timeout(120)


def start(tmp_path: Path, script: list, *extra: str) -> subprocess.Popen:
    repo = tmp_path / "repo"
    repo.mkdir(exist_ok=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (tmp_path / "s.json").write_text(json.dumps(script))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GODWIT_HOME": str(tmp_path / "home")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent.cli",
            "--output-format",
            "stream-json",
            "--verbose",
            "--input-format",
            "stream-json",
            "--model",
            f"scripted:{tmp_path / 's.json'}",
            *extra,
        ],
        cwd=repo,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def send(proc: subprocess.Popen, obj) -> None:
    proc.stdin.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n")
    proc.stdin.flush()


def read_until(proc: subprocess.Popen, pred) -> list[dict]:
    lines = []
    while True:
        raw = proc.stdout.readline()
        assert raw, f"godwit ended early: {proc.stderr.read()[-2000:]}"
        lines.append(json.loads(raw))
        if pred(lines[-1]):
            return lines


def user(text: str) -> dict:
    return {
        "type": "user",
        "session_id": "",
        "parent_tool_use_id": None,
        "message": {"role": "user", "content": text},
    }


def test_prompts_and_control_requests_over_stdin(tmp_path: Path) -> None:
    proc = start(
        tmp_path,
        [{"text": "first answer"}, {"text": "second answer"}],
        "--replay-user-messages",
        "--include-partial-messages",
    )
    try:
        send(
            proc,
            {
                "type": "control_request",
                "request_id": "r1",
                "request": {"subtype": "initialize", "hooks": None},
            },
        )
        init = read_until(proc, lambda l: l["type"] == "control_response")
        assert init[-1]["response"]["subtype"] == "success"
        send(proc, "this is not json")
        send(proc, user("one"))
        first = read_until(proc, lambda l: l["type"] == "result")
        assert first[0]["type"] == "system" and first[0]["subtype"] == "init"
        assert any(l["type"] == "user" and l["message"]["content"] == "one" for l in first)
        assert any(l["type"] == "stream_event" for l in first)
        assert first[-1]["result"] == "first answer" and first[-1]["is_error"] is False
        send(proc, user("two"))
        second = read_until(proc, lambda l: l["type"] == "result")
        assert second[-1]["result"] == "second answer"
        assert second[-1]["session_id"] == first[-1]["session_id"]
        send(
            proc,
            {
                "type": "control_request",
                "request_id": "r2",
                "request": {"subtype": "get_context_usage"},
            },
        )
        usage = read_until(proc, lambda l: l["type"] == "control_response")[-1]["response"]
        assert usage["subtype"] == "success" and usage["response"]["maxTokens"] > 0
        send(
            proc,
            {
                "type": "control_request",
                "request_id": "r3",
                "request": {"subtype": "stop_task", "task_id": "x"},
            },
        )
        refused = read_until(proc, lambda l: l["type"] == "control_response")[-1]["response"]
        assert refused["subtype"] == "error" and "stop_task" in refused["error"]
        send(
            proc,
            {
                "type": "control_request",
                "request_id": "r4",
                "request": {"subtype": "set_permission_mode", "mode": "acceptEdits"},
            },
        )
        ok = read_until(proc, lambda l: l["type"] == "control_response")[-1]["response"]
        assert ok["subtype"] == "success"
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
        assert "not JSON" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_print_mode_stream_json_and_events(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "s.json").write_text(json.dumps([{"text": "hello"}, {"text": "again"}]))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GODWIT_HOME": str(tmp_path / "home")}
    base = [
        sys.executable,
        "-m",
        "agent.cli",
        "-p",
        "hi",
        "--model",
        f"scripted:{tmp_path / 's.json'}",
        "--output-format",
    ]
    out = subprocess.run(
        [*base, "stream-json"],
        cwd=tmp_path / "repo",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [json.loads(l) for l in out.stdout.splitlines()]
    assert out.returncode == 0, out.stderr
    assert [l["type"] for l in lines] == ["system", "assistant", "result"]
    assert lines[-1]["result"] == "hello" and lines[-1]["subtype"] == "success"
    out = subprocess.run(
        [*base, "events"],
        cwd=tmp_path / "repo",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    types = [json.loads(l)["type"] for l in out.stdout.splitlines()]
    assert "text_delta" in types and "turn_end" in types and types[-1] == "result"


def test_set_model_switches_the_provider(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps([{"text": "from the other model"}]))
    proc = start(tmp_path, [{"text": "from the first model"}])
    try:
        send(proc, user("one"))
        first = read_until(proc, lambda l: l["type"] == "result")
        assert first[-1]["result"] == "from the first model"
        send(
            proc,
            {
                "type": "control_request",
                "request_id": "m1",
                "request": {"subtype": "set_model", "model": f"scripted:{other}"},
            },
        )
        ok = read_until(proc, lambda l: l["type"] == "control_response")[-1]["response"]
        assert ok["subtype"] == "success", ok
        send(proc, user("two"))
        second = read_until(proc, lambda l: l["type"] == "result")
        assert second[-1]["result"] == "from the other model"
        send(
            proc,
            {
                "type": "control_request",
                "request_id": "m2",
                "request": {"subtype": "set_model", "model": "nonsense:x"},
            },
        )
        bad = read_until(proc, lambda l: l["type"] == "control_response")[-1]["response"]
        assert bad["subtype"] == "error" and "nonsense" in bad["error"]
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
