"""One recorder: every state change is an event that the log and every subscriber see, and what
the model is told follows the recorded state."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess

import pytest

from agent import Agent
from agent import events as ev
from agent.cli.headless import run_headless
from agent.errors import UsageError
from agent.providers.scripted import ScriptedProvider
from tests.agent.ui.helpers import SIZE, make_agent, make_app, send, until_idle


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "app.py").write_text("x = 1\n")
    return root


def logged_types(agent: Agent) -> list[str]:
    lines = agent.runtime().session.path.read_text().splitlines()
    return [json.loads(line)["type"] for line in lines]


def test_switching_to_plan_mode_changes_the_system_prompt_and_is_logged(repo):
    agent = Agent(cwd=repo, provider=ScriptedProvider([{"text": "a"}, {"text": "b"}]))
    seen: list[ev.Event] = []
    agent.subscribe(seen.append)
    agent.run("first")
    agent.set_permission_mode("plan")
    agent.run("second")
    first, second = agent.runtime().provider.requests
    assert "Plan mode is on" not in first.system
    assert "Plan mode is on" in second.system
    changes = [e for e in seen if isinstance(e, ev.PermissionModeChanged)]
    assert [(c.mode, c.previous) for c in changes] == [("plan", "default")]
    assert "permission_mode" in logged_types(agent)
    assert agent.permission_mode == "plan"
    with pytest.raises(UsageError, match="Unknown permission mode"):
        agent.set_permission_mode("yolo")


async def test_shift_tab_into_plan_mode_is_told_to_the_model(repo):
    with make_agent(repo, [{"text": "A plan."}]) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("shift+tab")  # acceptEdits
            await pilot.press("shift+tab")  # plan
            await pilot.pause()
            assert "⏵ plan" in app.status.render().plain
            await send(pilot, "what would you change?")
            await until_idle(pilot)
            assert "Plan mode is on" in agent.runtime().provider.requests[-1].system
            modes = [e.mode for e in agent.events if isinstance(e, ev.PermissionModeChanged)]
            assert modes == ["acceptEdits", "plan"]


def test_a_session_rule_is_an_event_and_allows_the_call(repo):
    turns = [
        {"text": "", "tool_calls": [{"name": "bash", "input": {"command": "echo hi"}}]},
        {"text": "done"},
    ]
    agent = Agent(cwd=repo, provider=ScriptedProvider(turns))
    seen: list[ev.Event] = []
    agent.subscribe(seen.append)
    agent.add_rule("bash(echo hi)")
    agent.run("say hi")
    added = [e for e in seen if isinstance(e, ev.RuleAdded)]
    assert [(a.rule, a.kind) for a in added] == [("bash(echo hi)", "allow")]
    decision = next(e for e in agent.events if isinstance(e, ev.PermissionDecision))
    assert decision.decision == "allow" and decision.source == "rule"
    assert "rule_added" in logged_types(agent)


def test_rewind_and_undo_reach_subscribers(repo):
    agent = Agent(cwd=repo, provider=ScriptedProvider([{"text": "one"}, {"text": "two"}]))
    agent.run("first")
    agent.run("second")
    seen: list[ev.Event] = []
    agent.subscribe(seen.append)
    target = agent.checkpoints()[-1]["id"]
    agent.rewind(target, restore="conversation")
    agent.undo_rewind()
    rewinds = [e for e in seen if isinstance(e, ev.Rewind)]
    assert [(r.checkpoint, r.undo) for r in rewinds] == [(target, False), (target, True)]


def test_a_compaction_before_the_prompt_is_in_the_stream_json_output(repo):
    turns = [
        {"text": "First answer."},
        {"text": "Second answer."},
        {"text": "SUMMARY of the first two."},
        {"text": "Third answer."},
    ]
    agent = Agent(
        cwd=repo,
        provider=ScriptedProvider(turns),
        settings={"context": {"compact_keep_last_turns": 1}},
    )
    agent.run("question one")
    agent.run("question two")
    out, err = io.StringIO(), io.StringIO()
    status = asyncio.run(
        run_headless(agent, "question three", "events", compact=True, out=out, err=err)
    )
    assert status == 0, err.getvalue()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    types = [line["type"] for line in lines]
    assert types[0] == "system" and types[-1] == "result"
    compaction = next(line for line in lines if line["type"] == "compaction")
    assert "SUMMARY" in compaction["summary"] and compaction["trigger"] == "manual"
    assert types.index("compaction") < types.index("compaction_result") < types.index("user")


def test_an_unsubscribed_listener_hears_nothing_more(repo):
    agent = Agent(cwd=repo, provider=ScriptedProvider([{"text": "a"}, {"text": "b"}]))
    seen: list[ev.Event] = []
    unsubscribe = agent.subscribe(seen.append)
    agent.run("one")
    count = len(seen)
    unsubscribe()
    agent.run("two")
    assert count > 0 and len(seen) == count
