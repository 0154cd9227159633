"""The whole loop with the real SDK providers against the fake server, real tools, a real repo."""

from __future__ import annotations

import subprocess

import pytest

from agent import Agent
from agent import events as ev
from agent.providers import make_provider
from tests.agent.providers.helpers import FAST
from tests.fakes.replies import ToolUse, call, calls, http_error, say


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "main.py").write_text("print('hi')\r\nvalue = 1\r\n")
    return root


def anthropic_agent(server, repo, **kw):
    provider = make_provider(
        "anthropic:claude-sonnet-5-5", base_url=server.url, api_key="test-key", retry=FAST
    )
    return Agent(cwd=repo, provider=provider, permission_mode="bypassPermissions", **kw)


def test_claude_edits_a_file_and_runs_bash_through_the_real_sdk(llm_server, repo):
    llm_server.push(
        call(
            "str_replace_based_edit_tool",
            {
                "command": "str_replace",
                "path": "main.py",
                "old_str": "value = 1",
                "new_str": "value = 2",
            },
            text="Changing the value.",
        ),
        call("bash", {"command": "grep -c value main.py"}),
        say("Done: value is 2."),
    )
    agent = anthropic_agent(llm_server, repo)
    result = agent.run("set value to 2")
    assert result.result == "Done: value is 2." and not result.is_error
    # CRLF line endings survived the edit.
    assert (repo / "main.py").read_bytes() == b"print('hi')\r\nvalue = 2\r\n"
    bodies = [r.body for r in llm_server.model_requests]
    assert len(bodies) == 3
    tools = {t["name"]: t for t in bodies[0]["tools"]}
    assert tools["str_replace_based_edit_tool"]["type"] == "text_editor_20250728"
    assert tools["bash"]["type"] == "bash_20250124"
    assert tools["memory"]["type"] == "memory_20250818"
    assert "input_schema" in tools["glob"] and "input_schema" in tools["grep"]
    last = bodies[2]["messages"][-1]["content"][0]
    assert last["type"] == "tool_result" and "1" in str(last["content"])
    assert result.usage["input_tokens"] > 0 and result.cost_usd > 0


def test_a_dropped_stream_is_retried_and_the_tool_runs_once(llm_server, repo):
    counter = repo / "count.txt"
    command = f"echo x >> {counter}"
    llm_server.push(
        call("bash", {"command": command}, drop_after=4),  # cut before the final event
        call("bash", {"command": command}),  # the retry of that model call
        say("ok", error_event_after=2),  # an error event mid-stream
        say("ok"),
    )
    agent = anthropic_agent(llm_server, repo)
    events = []

    async def go():
        async for e in agent.stream("append once"):
            events.append(e)

    import asyncio

    asyncio.run(go())
    assert counter.read_text() == "x\n"
    assert sum(isinstance(e, ev.Retry) for e in events) == 2
    assert events[-1].reason == "end_turn"


def test_retries_exhausted_is_an_error_event_and_the_session_survives(llm_server, repo):
    llm_server.push(*[http_error(500)] * 6)
    agent = anthropic_agent(llm_server, repo)
    result = agent.run("hello")
    assert result.is_error and result.stop_reason == "error"
    assert result.errors and "500" in result.errors[0]
    llm_server.push(say("back"))
    assert agent.run("again").result == "back"


def test_unknown_model_is_a_clear_error(llm_server, repo):
    llm_server.push(http_error(404, error_type="not_found_error", message="model: claude-nope"))
    provider = make_provider(
        "anthropic:claude-nope", base_url=llm_server.url, api_key="k", retry=FAST
    )
    result = Agent(cwd=repo, provider=provider).run("hi")
    assert result.is_error and "claude-nope" in result.errors[0] and "--model" in result.errors[0]


def test_invalid_tool_json_becomes_an_error_the_model_reads(llm_server, repo):
    llm_server.push(call("bash", raw_json='{"command": "ls'), say("I will fix my call."))
    agent = anthropic_agent(llm_server, repo)
    agent.run("list")
    result = next(e for e in agent.events if isinstance(e, ev.ToolResult))
    assert result.is_error and "not valid JSON" in result.content
    sent = llm_server.model_requests[1].body["messages"][-1]["content"][0]
    assert sent["is_error"] is True


def test_openai_compatible_server_drives_the_loop(llm_server, repo, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", llm_server.openai_url)
    llm_server.push(
        calls(
            ToolUse("glob", {"pattern": "*.py"}),
            ToolUse("str_replace_based_edit_tool", {"command": "view", "path": "main.py"}),
        ),
        say("main.py prints hi."),
    )
    agent = Agent(cwd=repo, model="openai:deepseek-chat", settings={"memory": True})
    result = agent.run("what does main.py do?")
    assert result.result == "main.py prints hi."
    body = llm_server.model_requests[1].body
    roles = [m["role"] for m in body["messages"]]
    assert roles[0] == "system" and roles[-2:] == ["tool", "tool"]
    # Non-Claude models get the memory instruction in the system prompt.
    assert "memory" in body["messages"][0]["content"].lower()
    names = {t["function"]["name"] for t in body["tools"]}
    assert {"bash", "str_replace_based_edit_tool", "glob", "grep", "memory"} <= names


def test_provider_options_from_settings(llm_server, repo, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    llm_server.push(http_error(500), say("never"))
    agent = Agent(
        cwd=repo,
        model="anthropic:claude-sonnet-5-5",
        base_url=llm_server.url,
        settings={"provider_options": {"max_retries": 0}},
    )
    result = agent.run("hi")
    assert result.is_error and len(llm_server.model_requests) == 1
