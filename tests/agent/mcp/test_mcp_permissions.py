"""MCP tools under the session's permission policy, with Claude Code's rule forms."""

from __future__ import annotations

import pytest

from agent.errors import ConfigError
from agent.permissions import PermissionPolicy
from agent.settings import PermissionRules


def policy(mode="default", **rules) -> PermissionPolicy:
    return PermissionPolicy(mode, PermissionRules(**rules), tools=["bash", "glob"])


def test_mcp_rules_allow_deny_ask() -> None:
    p = policy(
        allow=["mcp__git", "mcp__time__get_current_time"],
        deny=["mcp__git__git_commit"],
        ask=["mcp__git__git_reset*"],
    )
    assert p.check("mcp__git__git_status", {}, False).decision == "allow"
    assert p.check("mcp__git__git_commit", {"message": "x"}, False).decision == "deny"
    assert p.check("mcp__git__git_reset_hard", {}, False).decision == "ask"
    assert p.check("mcp__time__get_current_time", {}, False).decision == "allow"
    assert p.check("mcp__time__convert_time", {}, False).decision == "ask"
    assert p.check("mcp__github__get_issue", {}, False).decision == "ask"


def test_mcp_wildcards_and_modes() -> None:
    assert policy(allow=["mcp__git__*"]).check("mcp__git__git_log", {}, False).decision == "allow"
    denied = policy(mode="bypassPermissions", deny=["mcp__*"])
    assert denied.check("mcp__any__thing", {}, False).decision == "deny"
    assert denied.check("bash", {"command": "ls"}, False).decision == "allow"
    # MCP tools are not read-only, so plan mode refuses them.
    assert policy(mode="plan").check("mcp__git__git_status", {}, False).decision == "deny"


def test_bad_mcp_rules_are_refused() -> None:
    with pytest.raises(ConfigError, match="must name its MCP server"):
        policy(allow=["mcp__*"])
    with pytest.raises(ConfigError, match="no parentheses"):
        policy(deny=["mcp__git(status)"])
    # Rules naming servers that are not (yet) connected are fine; unknown built-in tools not.
    policy(deny=["mcp__not_started"])
    with pytest.raises(ConfigError, match="unknown tool"):
        policy(allow=["Nonsense"])


def test_tool_result_images_reach_anthropic_and_are_named_for_openai() -> None:
    from agent.messages import Message, TextBlock, ToolResultBlock, ToolUseBlock
    from agent.providers.convert import anthropic_messages, openai_messages

    image = {"media_type": "image/png", "data": "iVBORw0KGgo="}
    messages = [
        Message(role="user", content=[TextBlock(text="look")]),
        Message(role="assistant", content=[ToolUseBlock(id="t1", name="mcp__s__shot")]),
        Message(
            role="user", content=[ToolResultBlock(tool_use_id="t1", content="shot", images=[image])]
        ),
    ]
    result = anthropic_messages(messages)[-1]["content"][0]
    assert result["content"] == [
        {"type": "text", "text": "shot"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
    ]
    tool = next(m for m in openai_messages("", messages) if m["role"] == "tool")
    assert tool["content"].startswith("shot\n[the tool returned an image (image/png)")
