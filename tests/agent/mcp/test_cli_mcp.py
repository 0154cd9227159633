"""MCP servers through the real `godwit` command: approval, tools offered to each provider and
called under the permission rules, a failure reported once, no server left after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.agent.mcp import servers
from tests.agent.mcp.test_servers import alive, wait_dead
from tests.fakes.replies import call, say

pytest.importorskip("mcp")
ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.timeout(180)


def godwit(*args, cwd, env=None, timeout=90):
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    good = servers.script(tmp_path, "good", servers.GOOD)
    (root / ".mcp.json").write_text(json.dumps({"mcpServers": {"good": good}}))
    return root


def events(out: subprocess.CompletedProcess) -> list[dict]:
    assert out.returncode in (0, 1), out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_project_server_needs_approval_then_its_tool_runs_under_the_rules(project, tmp_path):
    script = tmp_path / "s.json"
    script.write_text(
        json.dumps(
            [
                {"tool_calls": [{"name": "mcp__good__echo", "input": {"text": "hi"}}]},
                {"text": "done"},
            ]
        )
    )
    args = ["-p", "use it", "--model", f"scripted:{script}", "--output-format", "events"]
    # Not approved: the server does not start, the user is told once how to approve it.
    lines = events(godwit(*args, cwd=project))
    errors = [l for l in lines if l["type"] == "error" and l["kind"] == "mcp"]
    assert len(errors) == 1 and "godwit mcp approve good" in errors[0]["message"]
    result = next(l for l in lines if l["type"] == "tool_result")
    assert result["is_error"] and "no tool named 'mcp__good__echo'" in result["content"]
    assert godwit("mcp", "approve", "good", cwd=project).returncode == 0
    # Approved, but headless with no allow rule: asked, so refused.
    lines = events(godwit(*args, cwd=project))
    result = next(l for l in lines if l["type"] == "tool_result")
    assert (
        result["is_error"] and "Permission to use mcp__good__echo was denied" in result["content"]
    )
    # An allow rule for the server, written as Claude Code writes it.
    lines = events(godwit(*args, "--allowedTools", "mcp__good", cwd=project))
    result = next(l for l in lines if l["type"] == "tool_result")
    assert result == {**result, "is_error": False, "content": "echo: hi"}
    listing = godwit("mcp", "list", "--json", cwd=project)
    row = json.loads(listing.stdout)[0]
    assert row["state"] == "connected" and "picture" in row["tools"]


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_mcp_tools_are_offered_to_each_provider(project, llm_server, kind):
    assert godwit("mcp", "approve", "good", cwd=project).returncode == 0
    llm_server.push(call("mcp__good__echo", {"text": "hey"}), say("ok"))
    model = "anthropic:claude-sonnet-5-5" if kind == "anthropic" else "openai:gpt-test"
    env = {
        "ANTHROPIC_API_KEY": "k",
        "ANTHROPIC_BASE_URL": llm_server.url,
        "OPENAI_API_KEY": "k",
        "OPENAI_BASE_URL": llm_server.openai_url,
    }
    out = godwit(
        "-p",
        "go",
        "--model",
        model,
        "--allowedTools",
        "mcp__good__echo",
        "--output-format",
        "json",
        cwd=project,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["result"] == "ok"
    first, second = llm_server.model_requests[:2]
    names = [t.get("name") or t["function"]["name"] for t in first.body["tools"]]
    assert "mcp__good__echo" in names
    spec = next(
        t
        for t in first.body["tools"]
        if (t.get("name") or t["function"]["name"]) == "mcp__good__echo"
    )
    schema = spec.get("input_schema") or spec["function"]["parameters"]
    assert schema["properties"]["text"]["type"] == "string"
    assert "echo: hey" in json.dumps(second.body["messages"])


def test_a_server_that_dies_mid_session_is_reported_once(project, tmp_path):
    godwit("mcp", "approve", "good", cwd=project)
    script = tmp_path / "s.json"
    script.write_text(
        json.dumps(
            [
                {"tool_calls": [{"name": "mcp__good__die", "input": {}}]},
                {"tool_calls": [{"name": "mcp__good__echo", "input": {"text": "x"}}]},
                {"text": "gone"},
            ]
        )
    )
    out = godwit(
        "-p",
        "go",
        "--model",
        f"scripted:{script}",
        "--output-format",
        "stream-json",
        "--allowedTools",
        "mcp__good",
        cwd=project,
    )
    lines = events(out)
    notices = [l for l in lines if l.get("subtype") == "mcp_server_failed"]
    assert len(notices) == 1 and "'good'" in notices[0]["message"]
    assert lines[0]["mcp_servers"] == [{"name": "good", "status": "connected"}]
    assert lines[-1]["type"] == "result" and lines[-1]["result"] == "gone"
    results = [b for l in lines if l["type"] == "user" for b in l["message"]["content"]]
    assert results[0]["is_error"] and "no tool named 'mcp__good__echo'" in results[1]["content"]


def test_kill_9_of_godwit_leaves_no_mcp_server(project, tmp_path):
    godwit("mcp", "approve", "good", cwd=project)
    pidfile = tmp_path / "pids"
    good = servers.script(tmp_path, "good", servers.GOOD)
    good["env"] = {"PIDFILE": str(pidfile)}
    script = tmp_path / "s.json"
    script.write_text(
        json.dumps(
            [{"tool_calls": [{"name": "bash", "input": {"command": "sleep 60"}}]}, {"text": "x"}]
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent.cli",
            "-p",
            "go",
            "--model",
            f"scripted:{script}",
            "--output-format",
            "events",
            "--permission-mode",
            "bypassPermissions",
            "--strict-mcp-config",
            "--mcp-config",
            json.dumps({"mcpServers": {"good": good}}),
        ],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        for line in proc.stdout:
            if json.loads(line)["type"] == "tool_call":
                break
        pids = [int(p) for p in pidfile.read_text().split()]
        assert all(alive(p) for p in pids)
        time.sleep(0.3)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert wait_dead(pids) == [], "an MCP server outlived kill -9 of godwit"
