"""Hooks from the settings files through the real `godwit` command: Claude Code hook scripts,
unchanged, at each event; `env` reaches the tools and the hooks; failures do not stop a session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.timeout(120)

# As Claude Code's documentation writes a Bash validator: JSON in, exit 2 with a reason out.
NO_RM = textwrap.dedent("""
    import json, sys
    data = json.load(sys.stdin)
    if data["tool_name"] == "Bash" and "rm -rf" in data["tool_input"].get("command", ""):
        print("rm -rf is blocked by policy; remove files one by one", file=sys.stderr)
        sys.exit(2)
""")


def run(tmp_path: Path, settings: dict, script: list, prompt: str = "go") -> list[dict]:
    repo = tmp_path / "repo"
    repo.mkdir(exist_ok=True)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "settings.json").write_text(json.dumps(settings))
    (tmp_path / "s.json").write_text(json.dumps(script))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GODWIT_HOME": str(home)}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cli",
            "-p",
            prompt,
            "--model",
            f"scripted:{tmp_path / 's.json'}",
            "--output-format",
            "events",
            "--permission-mode",
            "bypassPermissions",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert out.returncode in (0, 1), out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_claude_code_hook_scripts_at_each_event(tmp_path: Path) -> None:
    (tmp_path / "no_rm.py").write_text(NO_RM)
    log = tmp_path / "ended"
    settings = {
        "env": {"DEPLOY_TARGET": "staging"},
        "hooks": {
            "PreToolUse": [
                {
                    "matcher": "Bash",
                    "hooks": [
                        {"type": "command", "command": f"{sys.executable} {tmp_path / 'no_rm.py'}"}
                    ],
                }
            ],
            "PostToolUse": [
                {
                    "matcher": "Bash",
                    "hooks": [
                        {
                            "type": "command",
                            "command": 'echo \'{"hookSpecificOutput": {"hookEventName": "PostToolUse", '
                            '"additionalContext": "remember the changelog"}}\'',
                        }
                    ],
                }
            ],
            "UserPromptSubmit": [
                {"hooks": [{"type": "command", "command": 'echo "target is $DEPLOY_TARGET"'}]}
            ],
            "Stop": [
                {
                    "hooks": [
                        {
                            "type": "command",
                            "command": "jq -e '.stop_hook_active' >/dev/null || "
                            "(echo 'run the tests before stopping' >&2; exit 2)",
                        }
                    ]
                }
            ],
            "SessionEnd": [{"hooks": [{"type": "command", "command": f"cat > {log}"}]}],
        },
    }
    lines = run(
        tmp_path,
        settings,
        [
            {"tool_calls": [{"name": "bash", "input": {"command": "rm -rf build"}}]},
            {"tool_calls": [{"name": "bash", "input": {"command": "echo $DEPLOY_TARGET"}}]},
            {"text": "all done"},
            {"text": "tests pass, really done"},
        ],
    )
    prompt = next(l for l in lines if l["type"] == "user")
    assert prompt["text"].startswith("go") and "target is staging" in prompt["text"]
    results = [l for l in lines if l["type"] == "tool_result"]
    assert results[0]["is_error"] and "rm -rf is blocked by policy" in results[0]["content"]
    assert results[1]["content"].startswith("staging")  # `env` reached the shell
    assert "remember the changelog" in results[1]["content"]
    users = [l["text"] for l in lines if l["type"] == "user"]
    assert users[1] == "[Stop hook] run the tests before stopping"
    end = next(l for l in lines if l["type"] == "turn_end")
    assert end["result"] == "tests pass, really done" and end["reason"] == "end_turn"
    ended = json.loads(log.read_text())
    assert ended["hook_event_name"] == "SessionEnd" and ended["reason"] == "other"
    assert ended["session_id"] == lines[0]["session_id"]


def test_failing_and_hanging_hooks_do_not_stop_the_session(tmp_path: Path) -> None:
    settings = {
        "hooks": {
            "PreToolUse": [
                {
                    "hooks": [
                        {"type": "command", "command": "echo cannot parse >&2; exit 3"},
                        {"type": "command", "command": "sleep 30", "timeout": 1},
                    ]
                }
            ]
        }
    }
    lines = run(
        tmp_path,
        settings,
        [
            {"tool_calls": [{"name": "bash", "input": {"command": "echo ran"}}]},
            {"text": "finished"},
        ],
    )
    errors = [l["message"] for l in lines if l["type"] == "error" and l["kind"] == "hook"]
    assert any("exit 3" in e and "cannot parse" in e for e in errors)
    assert any("timed out after 1 s" in e for e in errors)
    result = next(l for l in lines if l["type"] == "tool_result")
    assert result["content"].strip() == "ran" and not result["is_error"]
    assert lines[-1]["type"] == "result" and lines[-1]["result"] == "finished"


def test_a_prompt_blocked_by_a_hook_is_not_sent(tmp_path: Path) -> None:
    settings = {
        "hooks": {
            "UserPromptSubmit": [
                {
                    "hooks": [
                        {
                            "type": "command",
                            "command": 'echo \'{"decision": "block", "reason": "no secrets in prompts"}\'',
                        }
                    ]
                }
            ]
        }
    }
    lines = run(tmp_path, settings, [{"text": "should not be reached"}], prompt="password=1")
    assert not [l for l in lines if l["type"] in ("user", "assistant")]
    end = next(l for l in lines if l["type"] == "turn_end")
    assert end["reason"] == "blocked" and end["result"] == "no secrets in prompts"


def test_bad_hooks_in_settings_are_a_clear_error(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".godwit").mkdir()
    (repo / ".godwit" / "settings.json").write_text(
        json.dumps({"hooks": {"PreToolUse": [{"matcher": "(", "hooks": []}]}})
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GODWIT_HOME": str(tmp_path / "home")}
    (tmp_path / "s.json").write_text("[]")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cli",
            "-p",
            "x",
            "--model",
            f"scripted:{tmp_path / 's.json'}",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "not a valid pattern" in out.stderr
    assert "Traceback" not in out.stderr


def test_pre_compact_hook_sees_the_trigger(tmp_path: Path) -> None:
    from agent.providers.scripted import ScriptedProvider
    from agent.sdk import Agent

    seen = tmp_path / "compact.json"
    repo = tmp_path / "repo"
    repo.mkdir()
    settings = {
        "hooks": {
            "PreCompact": [
                {"matcher": "manual", "hooks": [{"type": "command", "command": f"cat > {seen}"}]}
            ]
        },
        "context": {"compact_keep_last_turns": 1},
    }
    turns = [{"text": "one"}, {"text": "two"}, {"text": "SUMMARY"}]
    agent = Agent(
        cwd=repo, provider=ScriptedProvider(turns), settings=settings, home=tmp_path / "home"
    )
    agent.run("first")
    agent.run("second")
    agent.compact("keep the numbers")
    data = json.loads(seen.read_text())
    assert data["hook_event_name"] == "PreCompact" and data["trigger"] == "manual"
    assert data["custom_instructions"] == "keep the numbers"
    agent.close()
