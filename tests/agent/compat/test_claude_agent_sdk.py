"""A program written for the Claude Agent SDK runs on Godwit unchanged: the real
`claude-agent-sdk` package starts `godwit` as its CLI (`cli_path`), against the fake Messages API.
Skipped when the package (the `compat` extra) is not installed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

sdk = pytest.importorskip("claude_agent_sdk")

from tests.fakes.replies import call, say

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "a.txt").write_text("alpha\n")
    return root


@pytest.fixture
def cli(tmp_path: Path) -> str:
    """An executable that runs this checkout's `godwit` (the SDK wants a path)."""
    path = tmp_path / "godwit-cli"
    path.write_text(f'#!/bin/sh\nexec {sys.executable} -m agent.cli "$@"\n')
    path.chmod(0o755)
    return str(path)


def options(cli: str, repo: Path, llm_server, **kw):
    env = {
        "PYTHONPATH": str(ROOT),
        "ANTHROPIC_API_KEY": "k",
        "ANTHROPIC_BASE_URL": llm_server.url,
        "GODWIT_HOME": os.environ.get("GODWIT_HOME", str(repo.parent / "home")),
    }
    return sdk.ClaudeAgentOptions(
        cli_path=cli, cwd=str(repo), model="claude-sonnet-5-5", env=env, **kw
    )


async def collect(aiter) -> list:
    return [m async for m in aiter]


async def test_query_with_a_prompt(cli, repo, llm_server) -> None:
    llm_server.push(
        call("str_replace_based_edit_tool", {"command": "view", "path": "a.txt"}, text="Reading."),
        say("It says alpha."),
    )
    messages = await collect(
        sdk.query(
            prompt="what is in a.txt?",
            options=options(cli, repo, llm_server, permission_mode="default"),
        )
    )
    init = messages[0]
    assert isinstance(init, sdk.SystemMessage) and init.subtype == "init"
    assistants = [m for m in messages if isinstance(m, sdk.AssistantMessage)]
    assert isinstance(assistants[0].content[-1], sdk.ToolUseBlock)
    results = [
        b
        for m in messages
        if isinstance(m, sdk.UserMessage) and isinstance(m.content, list)
        for b in m.content
        if isinstance(b, sdk.ToolResultBlock)
    ]
    assert results and "alpha" in results[0].content
    result = messages[-1]
    assert isinstance(result, sdk.ResultMessage) and result.result == "It says alpha."
    assert not result.is_error and result.num_turns == 2
    assert result.session_id == init.data["session_id"]
    assert llm_server.model_requests[0].body["model"] == "claude-sonnet-5-5"


async def test_client_can_use_tool_hook_interrupt_and_rewind(cli, repo, llm_server) -> None:
    seen_permissions: list[tuple[str, dict]] = []
    seen_hooks: list[dict] = []

    async def can_use_tool(name, tool_input, context):
        seen_permissions.append((name, dict(tool_input)))
        if "forbidden" in tool_input.get("command", ""):
            return sdk.PermissionResultDeny(message="not that one")
        return sdk.PermissionResultAllow()

    async def pre_tool(input_data, tool_use_id, context):
        seen_hooks.append(input_data)
        if input_data["tool_input"].get("file_path") == "secret.txt":
            return {
                "hookSpecificOutput": {
                    "hookEventName": "PreToolUse",
                    "permissionDecision": "deny",
                    "permissionDecisionReason": "secret files stay",
                }
            }
        return {}

    opts = options(
        cli,
        repo,
        llm_server,
        can_use_tool=can_use_tool,
        hooks={"PreToolUse": [sdk.HookMatcher(matcher="Bash|Write", hooks=[pre_tool])]},
        # Sandboxed bash needs no approval; without the sandbox every command is asked about,
        # which is what brings can_use_tool in.
        extra_args={"replay-user-messages": None, "sandbox": "off"},
    )
    llm_server.push(
        call("bash", {"command": "echo forbidden"}, text="Trying."),
        call("bash", {"command": "echo fine > b.txt"}),
        call(
            "str_replace_based_edit_tool",
            {"command": "create", "path": "secret.txt", "file_text": "x"},
        ),
        say("Done."),
        say("Second prompt answered."),
    )
    async with sdk.ClaudeSDKClient(options=opts) as client:
        await client.query("make some files")
        first = await collect(client.receive_response())
        prompt_uuid = next(
            m.uuid for m in first if isinstance(m, sdk.UserMessage) and isinstance(m.content, str)
        )
        assert isinstance(first[-1], sdk.ResultMessage) and first[-1].result == "Done."
        names = [n for n, _ in seen_permissions]
        assert names == ["Bash", "Bash"]  # the denied-by-hook Write never reached can_use_tool
        assert [h["tool_name"] for h in seen_hooks] == ["Bash", "Bash", "Write"]
        errors = [
            b.content
            for m in first
            if isinstance(m, sdk.UserMessage) and isinstance(m.content, list)
            for b in m.content
            if b.is_error
        ]
        assert any("not that one" in e for e in errors)
        assert any("secret files stay" in e for e in errors)
        assert (repo / "b.txt").read_text() == "fine\n" and not (repo / "secret.txt").exists()

        # Several prompts, one session.
        await client.query("and now?")
        second = await collect(client.receive_response())
        assert second[-1].result == "Second prompt answered."
        assert second[-1].session_id == first[-1].session_id

        # rewind_files goes back to the checkpoint taken when the first prompt started.
        await client.rewind_files(prompt_uuid)
        assert not (repo / "b.txt").exists() and (repo / "a.txt").read_text() == "alpha\n"

        usage = await client.get_context_usage()
        assert usage["totalTokens"] >= 0 and usage["maxTokens"] > 0

        # interrupt(): a slow reply is cut short and the turn ends with a result.
        llm_server.push(say("word " * 400, event_delay_s=0.05))
        await client.query("talk for a while")

        async def interrupt_soon():
            await asyncio.sleep(1.0)
            await client.interrupt()

        task = asyncio.create_task(interrupt_soon())
        third = await collect(client.receive_response())
        await task
        assert isinstance(third[-1], sdk.ResultMessage) and third[-1].is_error
        assert third[-1].subtype == "error_during_execution"


async def test_sdk_in_process_mcp_server(cli, repo, llm_server) -> None:
    @sdk.tool("shout", "Upper-case a text", {"text": str})
    async def shout(args):
        return {"content": [{"type": "text", "text": args["text"].upper()}]}

    server = sdk.create_sdk_mcp_server("tools", tools=[shout])
    llm_server.push(call("mcp__tools__shout", {"text": "quiet"}), say("It shouted."))
    opts = options(
        cli, repo, llm_server, mcp_servers={"tools": server}, allowed_tools=["mcp__tools__shout"]
    )
    messages = await collect(sdk.query(prompt="shout quiet", options=opts))
    assert messages[0].data["mcp_servers"] == [{"name": "tools", "status": "connected"}]
    results = [
        b
        for m in messages
        if isinstance(m, sdk.UserMessage) and isinstance(m.content, list)
        for b in m.content
        if isinstance(b, sdk.ToolResultBlock)
    ]
    assert results[0].content == "QUIET" and not results[0].is_error
    assert messages[-1].result == "It shouted."
