"""The loop end to end with the scripted provider, the real tools and real files."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import pytest

from agent import Agent, Hooks, PreToolDecision, tool
from agent import events as ev
from agent.errors import SessionError, UsageError
from agent.providers.scripted import ScriptedProvider


def scripted(*turns):
    return ScriptedProvider(list(turns))


def bash(cmd, **extra):
    return {"name": "bash", "input": {"command": cmd, **extra}}


def editor(**args):
    return {"name": "str_replace_based_edit_tool", "input": args}


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "app.py").write_text("x = 1\n")
    return root


def kinds(events):
    return [e.type for e in events if not e.ephemeral]


def test_text_reply_ends_the_turn_and_is_logged(repo):
    agent = Agent(cwd=repo, provider=scripted({"text": "Hello there."}))
    result = agent.run("hi")
    assert result.result == "Hello there."
    assert not result.is_error and result.stop_reason == "end_turn" and result.num_turns == 1
    log = agent.runtime().session.path.read_text().splitlines()
    types = [json.loads(line)["type"] for line in log]
    assert types[0] == "session_start"
    assert types[-3:] == ["assistant", "usage", "turn_end"]
    assert "text_delta" not in types  # deltas are streamed, not stored


def test_all_tool_calls_of_one_reply_are_answered_in_order(repo):
    agent = Agent(
        cwd=repo,
        permission_mode="bypassPermissions",
        provider=scripted(
            {
                "text": "two things",
                "tool_calls": [
                    editor(command="view", path="app.py"),
                    bash("echo second"),
                    editor(command="str_replace", path="app.py", old_str="x = 1", new_str="x = 2"),
                ],
            },
            {"text": "done"},
        ),
    )
    result = agent.run("go")
    assert result.result == "done"
    results = [e for e in agent.events if isinstance(e, ev.ToolResult)]
    assert [r.name for r in results] == [
        "str_replace_based_edit_tool",
        "bash",
        "str_replace_based_edit_tool",
    ]
    assert "x = 1" in results[0].content and "second" in results[1].content
    assert (repo / "app.py").read_text() == "x = 2\n"
    # The second model call saw all three results, in order, in one user message.
    sent = agent.runtime().provider.requests[1].messages[-1]
    assert [b.type for b in sent.content] == ["tool_result"] * 3


def test_max_turns_stops_the_loop(repo):
    agent = Agent(
        cwd=repo,
        max_turns=2,
        permission_mode="bypassPermissions",
        provider=scripted(*[{"tool_calls": [bash("true")]}] * 5),
    )
    result = agent.run("loop forever")
    assert result.stop_reason == "max_turns" and result.is_error and result.num_turns == 2


def test_bad_tool_calls_become_errors_the_model_reads(repo):
    agent = Agent(
        cwd=repo,
        permission_mode="bypassPermissions",
        provider=scripted(
            {
                "tool_calls": [
                    {"name": "no_such_tool", "input": {}},
                    editor(command="str_replace", path="app.py", old_str="zzz", new_str="y"),
                ]
            },
            {"text": "ok"},
        ),
    )
    agent.run("go")
    unknown, bad = [e for e in agent.events if isinstance(e, ev.ToolResult)]
    assert unknown.is_error and "no tool named 'no_such_tool'" in unknown.content
    assert bad.is_error and "app.py" in bad.content


def test_headless_default_mode_refuses_commands_with_a_message_the_model_sees(repo):
    # Without the sandbox (which makes commands need no approval), a command is asked about.
    agent = Agent(
        cwd=repo,
        provider=scripted({"tool_calls": [bash("touch made")]}, {"text": "ok"}),
        settings={"sandbox": {"enabled": False}},
    )
    agent.run("go")
    decision = next(e for e in agent.events if isinstance(e, ev.PermissionDecision))
    result = next(e for e in agent.events if isinstance(e, ev.ToolResult))
    assert decision.decision == "deny" and decision.source == "headless"
    assert result.is_error and "denied" in result.content
    assert not (repo / "made").exists()


def test_approval_callback_and_rules(repo):
    asked = []

    def approve(name, args, reason):
        asked.append(args["command"])
        return args["command"].startswith("echo")

    agent = Agent(
        cwd=repo,
        can_use_tool=approve,
        settings={"permissions": {"allow": ["bash(ls)"]}, "sandbox": {"enabled": False}},
        provider=scripted(
            {"tool_calls": [bash("ls"), bash("echo yes"), bash("touch no")]}, {"text": "ok"}
        ),
    )
    agent.run("go")
    assert asked == ["echo yes", "touch no"]  # ls was allowed by rule, never asked
    results = [e for e in agent.events if isinstance(e, ev.ToolResult)]
    assert [r.is_error for r in results] == [False, False, True]
    assert not (repo / "no").exists()


def test_hooks_can_deny_and_change_input_and_see_every_event(repo):
    seen, after = [], []

    def before(call):
        if call.input.get("command") == "rm -rf x":
            return PreToolDecision(deny="not on my watch")
        if call.name == "bash":
            return PreToolDecision(input={"command": "echo rewritten"})
        return None

    hooks = Hooks(
        before_tool=[before],
        after_tool=[lambda c, r: after.append(r.content)],
        on_event=[lambda e: seen.append(e.type)],
    )
    agent = Agent(
        cwd=repo,
        permission_mode="bypassPermissions",
        hooks=hooks,
        provider=scripted(
            {"tool_calls": [bash("rm -rf x"), bash("echo original")]}, {"text": "ok"}
        ),
    )
    agent.run("go")
    denied, changed = [e for e in agent.events if isinstance(e, ev.ToolResult)]
    assert denied.is_error and "not on my watch" in denied.content
    assert "rewritten" in changed.content and "original" not in changed.content
    assert len(after) == 1 and "rewritten" in after[0]
    assert {"user", "assistant", "tool_call", "tool_result", "turn_end"} <= set(seen)


def test_custom_function_tool(repo):
    @tool
    def add(a: int, b: int = 2) -> int:
        """Add two integers."""
        return a + b

    spec = add.anthropic_spec()
    assert spec["input_schema"]["required"] == ["a"]
    agent = Agent(
        cwd=repo,
        permission_mode="bypassPermissions",
        tools=[add],
        provider=scripted(
            {
                "tool_calls": [
                    {"name": "add", "input": {"a": 40}},
                    {"name": "add", "input": {"a": "x"}},
                ]
            },
            {"text": "ok"},
        ),
    )
    agent.run("add")
    good, bad = [e for e in agent.events if isinstance(e, ev.ToolResult)]
    assert good.content == "42" and not good.is_error
    assert bad.is_error and "Invalid input for add" in bad.content


def test_stream_yields_deltas_then_the_final_message(repo):
    agent = Agent(cwd=repo, provider=scripted({"text": "one two three"}))

    async def collect():
        return [e async for e in agent.stream("hi")]

    events = asyncio.run(collect())
    deltas = "".join(e.text for e in events if isinstance(e, ev.TextDelta))
    assert deltas == "one two three"
    assert isinstance(events[-1], ev.TurnEnd)


def test_cancel_stops_a_running_tool_keeps_partial_output_and_the_session_continues(repo):
    agent = Agent(
        cwd=repo,
        permission_mode="bypassPermissions",
        provider=scripted(
            {"text": "running", "tool_calls": [bash("echo started; sleep 30; echo never")]},
            {"text": "after the interrupt"},
        ),
    )

    async def go():
        events = []
        async for e in agent.stream("long job"):
            events.append(e)
            if isinstance(e, ev.ToolCall):
                asyncio.get_running_loop().call_later(0.7, agent.cancel)
        return events

    t0 = time.monotonic()
    events = asyncio.run(go())
    assert time.monotonic() - t0 < 10
    result = next(e for e in events if isinstance(e, ev.ToolResult))
    assert result.is_error and "started" in result.content and "never" not in result.content
    assert events[-1].reason == "interrupted"
    # The session goes on: the next prompt is answered and sees the interrupted result.
    assert agent.run("continue").result == "after the interrupt"
    sent = agent.runtime().provider.requests[-1].messages
    assert any(getattr(b, "tool_use_id", None) for m in sent for b in m.content)


def test_cancel_while_streaming_keeps_the_partial_reply(repo):
    agent = Agent(cwd=repo, provider=scripted({"text": "word " * 200, "delay": 0.01}))

    async def go():
        async for e in agent.stream("talk"):
            if isinstance(e, ev.TextDelta):
                agent.cancel()

    asyncio.run(go())
    partial = [e for e in agent.events if isinstance(e, ev.AssistantMessage)][-1]
    assert partial.stop_reason == "interrupted"
    assert partial.message.text().startswith("word") and "[interrupted]" in partial.message.text()


def test_resume_rebuilds_the_same_conversation(repo):
    first = Agent(
        cwd=repo,
        permission_mode="bypassPermissions",
        provider=scripted({"tool_calls": [bash("echo hi")]}, {"text": "one"}),
    )
    first.run("first")
    before = first.messages()
    sid = first.session_id
    first.close()
    again = Agent.resume(sid, cwd=repo, provider=scripted({"text": "two"}))
    assert again.messages() == before
    again.run("second")
    sent = again.runtime().provider.requests[0].messages
    assert [m.model_dump() for m in sent[:-1]] == before


def test_continue_and_fork(repo):
    a = Agent(cwd=repo, provider=scripted({"text": "one"}))
    a.run("first")
    first_id = a.session_id
    a.close()
    b = Agent(cwd=repo, continue_latest=True, provider=scripted({"text": "two"}))
    assert b.session_id == first_id
    # One writer per session: a second Agent on it is refused while b holds it...
    with pytest.raises(UsageError, match="in use by another godwit process"):
        Agent.resume(first_id, cwd=repo, provider=scripted())
    # ...but it can be forked.
    c = Agent(cwd=repo, continue_latest=True, fork=True, provider=scripted({"text": "x"}))
    assert c.session_id != first_id
    assert c.messages() == b.messages()
    start = [e for e in c.events if isinstance(e, ev.SessionStarted)][-1]
    assert start.forked_from == first_id
    b.close()
    assert Agent.resume(first_id, cwd=repo, provider=scripted()).session_id == first_id


def test_a_session_resumes_only_in_its_own_directory(repo, tmp_path):
    a = Agent(cwd=repo, provider=scripted({"text": "one"}))
    a.run("first")
    sid = a.session_id
    a.close()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(UsageError, match="belongs to"):
        Agent.resume(sid, cwd=elsewhere, provider=scripted())


def test_torn_last_line_is_skipped_with_a_warning_other_corruption_is_reported(repo):
    a = Agent(cwd=repo, provider=scripted({"text": "one"}))
    a.run("first")
    path = a.runtime().session.path
    a.close()
    good = path.read_bytes()
    path.write_bytes(good + b'{"type": "user", "text": "half')
    b = Agent.resume(path.stem, cwd=repo, provider=scripted({"text": "two"}))
    assert any("line" in w and "skipped" in w for w in b.runtime().session.warnings)
    assert b.run("second").result == "two"
    b.close()
    assert path.with_suffix(".jsonl.torn").exists()  # the torn bytes are set aside, not lost
    lines = path.read_bytes().splitlines()
    lines[2] = b"garbage"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(SessionError, match="line 3"):
        Agent.resume(path.stem, cwd=repo, provider=scripted())


def test_usage_errors(repo):
    with pytest.raises(UsageError, match="No session"):
        Agent.resume("nope", cwd=repo, provider=scripted())
    agent = Agent(cwd=repo, provider=scripted())
    with pytest.raises(UsageError):
        agent.run("   ")
    with pytest.raises(UsageError, match="is not a directory"):
        Agent(cwd=repo / "missing", provider=scripted()).runtime()


def test_agents_md_goes_into_the_system_prompt(repo):
    (repo / "AGENTS.md").write_text("Always run make lint.\n")
    (repo / "CLAUDE.md").write_text("Also read when AGENTS.md exists.\n")
    agent = Agent(cwd=repo, system_prompt="Extra rule.", provider=scripted({"text": "ok"}))
    agent.run("hi")
    system = agent.runtime().provider.requests[0].system
    assert "Always run make lint." in system and "Extra rule." in system
    assert system.index("Always run make lint.") < system.index("Also read when AGENTS.md")


def test_plan_mode_is_told_to_the_model(repo):
    agent = Agent(cwd=repo, permission_mode="plan", provider=scripted({"text": "plan"}))
    agent.run("hi")
    assert "Plan mode is on" in agent.runtime().provider.requests[0].system
