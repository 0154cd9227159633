"""Shell hooks with Claude Code's wire format, run for real with hook scripts written the way
Claude Code's documentation writes them (JSON on stdin, exit codes, JSON on stdout)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.command_hooks import (
    CommandHooks,
    HooksConfig,
    claude_name,
    from_hook,
    hook_input,
)

pytestmark = pytest.mark.timeout(60)

# A Claude Code style validator: reads the event, blocks `grep` in favour of `rg` with exit 2.
VALIDATOR = textwrap.dedent("""
    import json, re, sys
    try:
        data = json.load(sys.stdin)
    except json.JSONDecodeError as e:
        print(f"Error: Invalid JSON input: {e}", file=sys.stderr)
        sys.exit(1)
    if data.get("tool_name") != "Bash":
        sys.exit(0)
    command = data.get("tool_input", {}).get("command", "")
    if re.search(r"\\bgrep\\b(?!.*\\|)", command):
        print("Use 'rg' (ripgrep) instead of 'grep' for better performance", file=sys.stderr)
        sys.exit(2)
    sys.exit(0)
""")


def py(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(body)
    return f"{sys.executable} {path}"


def hooks(tmp_path: Path, config: dict, **kw) -> CommandHooks:
    return CommandHooks(
        config, cwd=tmp_path, session_id="s-1", transcript_path=str(tmp_path / "log.jsonl"), **kw
    )


async def test_exit_2_blocks_a_tool_call_with_stderr_as_the_reason(tmp_path: Path) -> None:
    h = hooks(
        tmp_path,
        {
            "PreToolUse": [
                {
                    "matcher": "Bash",
                    "hooks": [{"type": "command", "command": py(tmp_path, "v.py", VALIDATOR)}],
                }
            ]
        },
    )
    bash = ("bash", "Bash")
    blocked = await h.run(
        "PreToolUse", {"tool_name": "Bash", "tool_input": {"command": "grep -r foo ."}}, match=bash
    )
    assert blocked.blocked and blocked.permission == "deny"
    assert "Use 'rg' (ripgrep)" in blocked.reason
    fine = await h.run(
        "PreToolUse", {"tool_name": "Bash", "tool_input": {"command": "ls"}}, match=bash
    )
    assert not fine.blocked and fine.ran == 1 and fine.errors == []
    other = await h.run(
        "PreToolUse",
        {"tool_name": "Read", "tool_input": {}},
        match=("str_replace_based_edit_tool", "Read"),
    )
    assert other.ran == 0  # the matcher did not match


async def test_the_event_on_stdin_has_claude_codes_fields(tmp_path: Path) -> None:
    dump = tmp_path / "seen.json"
    h = hooks(
        tmp_path,
        {
            "PreToolUse": [
                {
                    "matcher": "Edit|Write",
                    "hooks": [{"type": "command", "command": f"cat > {dump}"}],
                }
            ]
        },
    )
    args = {"command": "create", "path": "a.py", "file_text": "x = 1\n"}
    await h.run(
        "PreToolUse",
        {
            "tool_name": claude_name("str_replace_based_edit_tool", args),
            "tool_input": hook_input("str_replace_based_edit_tool", args),
            "tool_use_id": "toolu_1",
        },
        match=("str_replace_based_edit_tool", "Write"),
    )
    seen = json.loads(dump.read_text())
    assert seen["hook_event_name"] == "PreToolUse" and seen["session_id"] == "s-1"
    assert seen["cwd"] == str(tmp_path) and seen["transcript_path"].endswith("log.jsonl")
    assert seen["permission_mode"] == "default" and seen["tool_use_id"] == "toolu_1"
    assert seen["tool_name"] == "Write"
    assert seen["tool_input"]["file_path"] == "a.py" and seen["tool_input"]["content"] == "x = 1\n"


async def test_json_answers_permission_and_updated_input(tmp_path: Path) -> None:
    # jq, as Claude Code's examples use it: rewrite the command, allow it with a reason.
    rewrite = (
        'jq -c \'{hookSpecificOutput: {hookEventName: "PreToolUse", '
        'permissionDecision: "allow", permissionDecisionReason: "safe", '
        'updatedInput: {command: (.tool_input.command + " --no-pager")}}}\''
    )
    h = hooks(
        tmp_path,
        {"PreToolUse": [{"matcher": "*", "hooks": [{"type": "command", "command": rewrite}]}]},
    )
    out = await h.run(
        "PreToolUse",
        {"tool_name": "Bash", "tool_input": {"command": "git log"}},
        match=("bash", "Bash"),
    )
    assert out.permission == "allow" and out.permission_reason == "safe"
    assert out.updated_input == {"command": "git log --no-pager"} and not out.blocked
    deny = hooks(
        tmp_path,
        {
            "PreToolUse": [
                {
                    "hooks": [
                        {"command": 'echo \'{"decision": "block", "reason": "old style"}\''},
                        {
                            "command": 'echo \'{"hookSpecificOutput": {"permissionDecision": "ask"}}\''
                        },
                    ]
                }
            ]
        },
    )
    out = await deny.run("PreToolUse", {"tool_name": "Bash"}, match=("bash", "Bash"))
    assert out.permission == "deny" and out.blocked and "old style" in out.reason


def test_updated_input_maps_back_to_godwits_keys() -> None:
    args = {"command": "str_replace", "path": "a.py", "old_str": "x", "new_str": "y"}
    sent = hook_input("str_replace_based_edit_tool", args)
    assert sent["old_string"] == "x" and sent["file_path"] == "a.py"
    changed = dict(sent, new_string="z")
    assert from_hook("str_replace_based_edit_tool", sent, changed) == {
        "command": "str_replace",
        "path": "a.py",
        "old_str": "x",
        "new_str": "z",
    }
    ins = {"command": "insert", "path": "a.py", "insert_line": 1, "insert_text": "q"}
    sent = hook_input("str_replace_based_edit_tool", ins)
    assert from_hook("str_replace_based_edit_tool", sent, sent) == ins
    assert from_hook("str_replace_based_edit_tool", sent, dict(sent, new_string="r")) == dict(
        ins, insert_text="r"
    )


async def test_prompt_context_block_and_stop(tmp_path: Path) -> None:
    h = hooks(
        tmp_path,
        {
            "UserPromptSubmit": [
                {
                    "hooks": [
                        {"command": "echo 'Current branch: main'"},
                        {
                            "command": 'echo \'{"hookSpecificOutput": {"hookEventName": "UserPromptSubmit", '
                            '"additionalContext": "Ticket ABC-1"}}\''
                        },
                    ]
                }
            ]
        },
    )
    out = await h.run("UserPromptSubmit", {"prompt": "hi"})
    assert sorted(out.context) == ["Current branch: main", "Ticket ABC-1"] and not out.blocked
    secret = py(
        tmp_path,
        "secret.py",
        textwrap.dedent("""
        import json, sys
        prompt = json.load(sys.stdin)["prompt"]
        if "password" in prompt.lower():
            print(json.dumps({"decision": "block", "reason": "Prompts may not hold secrets"}))
        sys.exit(0)
    """),
    )
    h = hooks(tmp_path, {"UserPromptSubmit": [{"hooks": [{"command": secret}]}]})
    out = await h.run("UserPromptSubmit", {"prompt": "my password is x"})
    assert out.blocked and out.reason == "Prompts may not hold secrets"
    stop = hooks(
        tmp_path,
        {
            "Stop": [
                {"hooks": [{"command": 'echo \'{"continue": false, "stopReason": "budget"}\''}]}
            ]
        },
    )
    out = await stop.run("Stop", {"stop_hook_active": False})
    assert out.stop and out.stop_reason == "budget"


async def test_failing_and_hanging_hooks_are_reported_not_fatal(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    h = hooks(
        tmp_path,
        {
            "PostToolUse": [
                {
                    "hooks": [
                        {"command": "echo broken >&2; exit 1"},
                        {"command": f"echo $$ > {pidfile}; sleep 300", "timeout": 1},
                        {"command": 'echo \'{"decision": "block", "reason": "lint failed"}\''},
                        {"command": "exit 0"},
                    ]
                }
            ]
        },
    )
    begin = time.monotonic()
    out = await h.run(
        "PostToolUse", {"tool_name": "Bash", "tool_response": {}}, match=("bash", "Bash")
    )
    assert time.monotonic() - begin < 5
    assert out.blocked and out.reason == "lint failed"
    assert any("exit 1" in e and "broken" in e for e in out.errors)
    assert any("timed out after 1 s" in e for e in out.errors)
    pid = int(pidfile.read_text())
    await asyncio.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_settings_env_and_project_dir_reach_the_hook(tmp_path: Path) -> None:
    h = hooks(
        tmp_path,
        {
            "SessionStart": [
                {
                    "matcher": "startup",
                    "hooks": [{"command": 'echo "$MY_FLAG in $CLAUDE_PROJECT_DIR"'}],
                }
            ]
        },
        env={"MY_FLAG": "on"},
    )
    out = await h.run("SessionStart", {"source": "startup"}, match=("startup",))
    assert out.context == [f"on in {tmp_path}"]
    out = await h.run("SessionStart", {"source": "resume"}, match=("resume",))
    assert out.ran == 0


def test_bad_config_is_refused_with_a_message() -> None:
    with pytest.raises(ValidationError, match="not a valid pattern"):
        HooksConfig.parse({"PreToolUse": [{"matcher": "(", "hooks": []}]})
    with pytest.raises(TypeError, match="list"):
        HooksConfig.parse({"PreToolUse": {"matcher": "x"}})
    # Claude Code's other events are accepted (one settings file serves both) and never run.
    HooksConfig.parse({"SubagentStop": [{"hooks": [{"type": "command", "command": "true"}]}]})


async def test_session_hooks_speak_claude_code_names_and_map_input_back(tmp_path: Path) -> None:
    from agent.command_hooks.session import SessionHooks

    # Rewrites Write's file_path, as a Claude Code hook would.
    rewrite = py(
        tmp_path,
        "rw.py",
        textwrap.dedent("""
        import json, sys
        data = json.load(sys.stdin)
        new = dict(data["tool_input"], file_path="safe/" + data["tool_input"]["file_path"])
        print(json.dumps({"hookSpecificOutput": {"hookEventName": "PreToolUse",
                                                 "updatedInput": new}}))
    """),
    )
    shell = CommandHooks(
        {
            "PreToolUse": [{"matcher": "Write", "hooks": [{"command": rewrite}]}],
            "PostToolUse": [
                {
                    "matcher": "mcp__git__.*",
                    "hooks": [{"command": "echo 'lint failed' >&2; exit 2"}],
                }
            ],
        },
        cwd=tmp_path,
    )
    hooks = SessionHooks([shell])
    args = {"command": "create", "path": "a.py", "file_text": "x"}
    out = await hooks.pre_tool("str_replace_based_edit_tool", args, "t1")
    assert out.updated_input == {"command": "create", "path": "safe/a.py", "file_text": "x"}
    view = await hooks.pre_tool(
        "str_replace_based_edit_tool", {"command": "view", "path": "a"}, "t2"
    )
    assert view.ran == 0  # Read does not match Write
    post = await hooks.post_tool("mcp__git__git_status", {}, "t3", "clean", False)
    assert post.blocked and post.reason == "lint failed"
    assert not hooks.has("Stop") and (await hooks.stop(False)).ran == 0
