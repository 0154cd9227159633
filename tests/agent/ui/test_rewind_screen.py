"""Esc Esc opens the checkpoint picker over real checkpoints: restoring code brings files back,
restoring the conversation rebuilds the transcript and puts the prompt back; /undo and u undo."""

from __future__ import annotations

from agent import events as ev
from agent.ui.rewind_screen import RewindScreen

from .helpers import (
    SIZE,
    make_agent,
    make_app,
    send,
    transcript_text,
    until_idle,
    wait_for,
)

EDIT = {
    "name": "str_replace_based_edit_tool",
    "input": {
        "command": "str_replace",
        "path": "app.py",
        "old_str": "return 41",
        "new_str": "return 42",
    },
}
CREATE = {
    "name": "str_replace_based_edit_tool",
    "input": {"command": "create", "path": "new.py", "file_text": "NEW = 1\n"},
}
TURNS = [
    {"text": "Fixing.", "tool_calls": [EDIT]},
    {"text": "Fixed it."},
    {"text": "Adding.", "tool_calls": [CREATE]},
    {"text": "Added it."},
]
FIXED = "def answer():\n    return 42\n"
ORIGINAL = "def answer():\n    return 41\n"


async def two_turns(pilot) -> None:
    await send(pilot, "fix the answer")
    await until_idle(pilot)
    await send(pilot, "add a module")
    await until_idle(pilot)


async def open_picker(pilot) -> RewindScreen:
    await pilot.press("escape", "escape")
    return await wait_for(
        pilot,
        lambda: isinstance(pilot.app.screen, RewindScreen) and pilot.app.screen,
        what="the rewind picker",
    )


async def pick(pilot, screen: RewindScreen, checkpoint: str) -> None:
    """Move the highlight to `checkpoint` with the arrow keys."""
    ids = [r["id"] for r in screen.rows]
    for _ in range(len(ids) - 1 - ids.index(checkpoint)):
        await pilot.press("up")
    assert screen.selected == checkpoint


def turn_start(agent, turn: int) -> str:
    return next(
        c["id"] for c in agent.checkpoints() if c["turn"] == turn and c["reason"] == "turn_start"
    )


async def test_restore_code_from_the_picker_then_undo(repo):
    with make_agent(repo, TURNS, mode="bypassPermissions") as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await two_turns(pilot)
            assert (repo / "app.py").read_text() == FIXED and (repo / "new.py").exists()
            screen = await open_picker(pilot)
            assert [r["id"] for r in screen.rows] == [c["id"] for c in agent.checkpoints()]
            assert screen.selected == screen.rows[-1]["id"]  # newest last, highlighted
            first = turn_start(agent, 1)
            await pick(pilot, screen, first)
            preview = screen.query_one("#rewind-preview")
            await wait_for(
                pilot, lambda: f"checkpoint {first}" in preview.content.plain, what="the diff"
            )
            assert "return 42" in preview.content.plain and "new.py" in preview.content.plain
            await pilot.press("c")
            await until_idle(pilot)
            assert (repo / "app.py").read_text() == ORIGINAL
            assert not (repo / "new.py").exists()
            assert "Code restored to checkpoint" in transcript_text(app)
            # Code only: the conversation and the input box are untouched.
            assert "Added it." in transcript_text(app) and app.prompt_input.text == ""
            await send(pilot, "/undo")
            await until_idle(pilot)
            assert (repo / "app.py").read_text() == FIXED and (repo / "new.py").exists()
            rewinds = [e for e in agent.events if isinstance(e, ev.Rewind)]
            assert [(r.restore, r.undo) for r in rewinds] == [("code", False), ("code", True)]


async def test_restore_conversation_rebuilds_transcript_and_refills_prompt(repo):
    with make_agent(repo, TURNS, mode="bypassPermissions") as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await two_turns(pilot)
            screen = await open_picker(pilot)
            await pick(pilot, screen, turn_start(agent, 2))
            await pilot.press("v")
            await until_idle(pilot)
            assert app.prompt_input.text == "add a module"
            text = transcript_text(app)
            assert "Fixed it." in text and "Added it." not in text and "> add a module" not in text
            assert (repo / "new.py").exists()  # conversation only: files stay
            assert [m["role"] for m in agent.messages()] == [
                "user",
                "assistant",
                "user",
                "assistant",
            ]
            # u in the picker undoes the rewind: the transcript comes back.
            await open_picker(pilot)
            await pilot.press("u")
            await until_idle(pilot)
            assert "Added it." in transcript_text(app)


async def test_both_and_picker_escape(repo):
    with make_agent(repo, TURNS, mode="bypassPermissions") as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await two_turns(pilot)
            await open_picker(pilot)
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen is app.screen_stack[0]
            assert not any(isinstance(e, ev.Rewind) for e in agent.events)
            screen = await open_picker(pilot)
            await pick(pilot, screen, turn_start(agent, 1))
            await pilot.press("b")
            await until_idle(pilot)
            assert (repo / "app.py").read_text() == ORIGINAL
            assert app.prompt_input.text == "fix the answer"
            assert agent.messages() == []


async def test_without_code_checkpoints_code_restore_fails_clearly(repo):
    with make_agent(repo, TURNS, mode="bypassPermissions", checkpoints=False) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await two_turns(pilot)
            await send(pilot, "/rewind")
            screen = await wait_for(
                pilot, lambda: isinstance(app.screen, RewindScreen) and app.screen
            )
            await pick(pilot, screen, turn_start(agent, 2))
            preview = screen.query_one("#rewind-preview")
            await wait_for(
                pilot,
                lambda: (
                    f"checkpoint {screen.selected}" in preview.content.plain
                    and "No code preview" in preview.content.plain
                ),
            )
            await pilot.press("c")
            await until_idle(pilot)
            failure = transcript_text(app).split("rewind failed:")[-1].lower()
            assert "rewind failed" in transcript_text(app) and "checkpoint" in failure
            assert (repo / "app.py").read_text() == FIXED  # nothing lost
            await send(pilot, "/undo")
            await until_idle(pilot)
            assert "undo failed:" in transcript_text(app)
