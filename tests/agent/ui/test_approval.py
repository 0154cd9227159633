"""The approval modal in default mode: y runs the call, n and Esc refuse it, a allows it for
the rest of the session; an edit is shown as a diff; an interrupt takes the question away."""

from __future__ import annotations

import pytest

from agent import events as ev
from agent.ui.approval import ApprovalScreen, session_rules
from agent.ui.entries import ToolEntry

from .helpers import SIZE, make_agent, make_app, send, until_idle, wait_for

# These tests are about asking; sandboxed commands are not asked about (issue 14).
NO_SANDBOX = {"enabled": False}


def bash(command: str) -> dict:
    return {"name": "bash", "input": {"command": command}}


def decisions(agent) -> list[tuple[str, str, str]]:
    return [
        (e.tool, e.decision, e.source) for e in agent.events if isinstance(e, ev.PermissionDecision)
    ]


async def modal(pilot) -> ApprovalScreen:
    return await wait_for(
        pilot,
        lambda: isinstance(pilot.app.screen, ApprovalScreen) and pilot.app.screen,
        what="the approval modal",
    )


async def test_y_allows_the_command(repo):
    turns = [{"text": "Making it.", "tool_calls": [bash("echo hi > made.txt")]}, {"text": "Made."}]
    with make_agent(repo, turns, sandbox=NO_SANDBOX) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "make a file")
            screen = await modal(pilot)
            body = screen.query_one("#approval-body").content.plain
            assert "echo hi > made.txt" in body
            assert not (repo / "made.txt").exists()  # nothing runs before the answer
            await pilot.press("y")
            await until_idle(pilot)
            assert (repo / "made.txt").read_text() == "hi\n"
            assert decisions(agent) == [("bash", "allow", "callback")]
            entry = app.query_one(ToolEntry)
            assert "allowed" in entry._decision.content.plain and not entry.is_error


@pytest.mark.parametrize("key", ["n", "escape"])
async def test_n_and_escape_deny_the_command(repo, key):
    turns = [{"text": "Deleting.", "tool_calls": [bash("rm app.py")]}, {"text": "Could not."}]
    with make_agent(repo, turns, sandbox=NO_SANDBOX) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "delete it")
            await modal(pilot)
            await pilot.press(key)
            await until_idle(pilot)
            assert (repo / "app.py").exists()
            assert decisions(agent) == [("bash", "deny", "callback")]
            result = next(e for e in agent.events if isinstance(e, ev.ToolResult))
            assert result.is_error and "denied" in result.content
            entry = app.query_one(ToolEntry)
            assert "denied" in entry._decision.content.plain and entry.is_error
            assert app.screen is app.screen_stack[0]


async def test_a_allows_the_command_for_the_rest_of_the_session(repo):
    turns = [
        {"text": "1", "tool_calls": [bash("mkdir made")]},
        {"text": "ok"},
        {"text": "2", "tool_calls": [bash("mkdir made")]},
        {"text": "ok"},
        {"text": "3", "tool_calls": [bash("mkdir other")]},
        {"text": "ok"},
    ]
    with make_agent(repo, turns, sandbox=NO_SANDBOX) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "first")
            await modal(pilot)
            await pilot.press("a")
            await until_idle(pilot)
            assert (repo / "made").is_dir()
            (repo / "made").rmdir()
            await send(pilot, "second")  # the same command: no question, it runs
            await until_idle(pilot)
            assert (repo / "made").is_dir()
            assert decisions(agent) == [("bash", "allow", "callback"), ("bash", "allow", "rule")]
            await send(pilot, "third")  # another command is asked again
            await modal(pilot)
            await pilot.press("n")
            await until_idle(pilot)
            assert not (repo / "other").exists()


async def test_edit_is_shown_as_a_diff_and_interrupt_withdraws_the_question(repo):
    edit = {
        "name": "str_replace_based_edit_tool",
        "input": {
            "command": "str_replace",
            "path": "app.py",
            "old_str": "return 41",
            "new_str": "return 42",
        },
    }
    with make_agent(repo, [{"text": "Fixing.", "tool_calls": [edit]}]) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "fix it")
            screen = await modal(pilot)
            body = screen.query_one("#approval-body").content
            assert "-    return 41" in body.plain and "+    return 42" in body.plain
            styles = {str(s.style) for s in body.spans}
            assert "red" in styles and "green" in styles
            await pilot.press("ctrl+c")
            await until_idle(pilot)
            assert app.screen is app.screen_stack[0]
            assert [e.reason for e in agent.events if isinstance(e, ev.TurnEnd)] == ["interrupted"]
            assert (repo / "app.py").read_text() == "def answer():\n    return 41\n"


def test_session_rules_cover_every_part_of_a_compound_command():
    assert session_rules("bash", {"command": "make && ./run --x | tee out"}) == [
        "bash(make)",
        "bash(./run --x)",
        "bash(tee out)",
    ]
    assert session_rules("str_replace_based_edit_tool", {"command": "create"}) == [
        "str_replace_based_edit_tool"
    ]


async def test_always_on_a_call_no_rule_can_cover_says_it_will_be_asked_again(repo):
    turns = [{"text": "1", "tool_calls": [bash("echo one > out.txt")]}, {"text": "ok"}]
    with make_agent(repo, turns, sandbox=NO_SANDBOX) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await send(pilot, "first")
            await modal(pilot)
            await pilot.press("a")
            await until_idle(pilot)
            assert (repo / "out.txt").read_text() == "one\n"  # allowed this time
            still_asked = (
                agent.runtime()
                .policy.check("bash", {"command": "echo one > out.txt"}, False)
                .decision
                == "ask"
            )
            # agent/permissions.py: an allow rule never covers a redirection into a file.
            assert still_asked
            messages = [n.message for n in app._notifications]
            assert any("always asked" in m for m in messages)
