"""SVG snapshots of the UI at 80x24 (laid out for it first) and 120x40 with the scripted model: a finished turn, the approval
modal over an edit, and the rewind picker. A layout change fails these tests.

What changes between runs (session id, checkpoint ids, the context estimate, which depends on
the temporary path in the system prompt, and Rich's per-export id) is replaced by placeholders
of the same width before comparing, so the layout itself is compared exactly.

Refresh after an intended change:  GODWIT_UPDATE_SNAPSHOTS=1 python -m pytest tests/agent/ui -k snapshot
then look at the .txt files' diff (a plain-text copy of each screen) before committing.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import pytest

from agent.ui.approval import ApprovalScreen
from agent.ui.rewind_screen import RewindScreen

from .helpers import make_agent, make_app, screen_text, send, until_idle, wait_for

SNAPSHOTS = Path(__file__).parent / "snapshots"
# 80x24 is the terminal people start in; 120x40 a roomy one.
SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
UPDATE = os.environ.get("GODWIT_UPDATE_SNAPSHOTS") == "1"
USAGE = {"input_tokens": 1234, "output_tokens": 56}

EDIT = {
    "name": "str_replace_based_edit_tool",
    "input": {
        "command": "str_replace",
        "path": "app.py",
        "old_str": "return 41",
        "new_str": "return 42",
    },
}
SESSION_TURNS = [
    {
        "thinking": "The function is off by one.",
        "text": "Let me run the check first.",
        "tool_calls": [{"name": "bash", "input": {"command": "printf 'a\\nb\\nc\\nd\\ne\\nf\\n'"}}],
        "usage": USAGE,
    },
    {"text": "Fixing it:", "tool_calls": [EDIT], "usage": USAGE},
    {
        "text": "Done: `answer()` now returns **42**.\n\n- edited `app.py`\n- ran the check",
        "usage": USAGE,
    },
]


def normalise(text: str, agent) -> str:
    """Replace what differs from run to run by same-width placeholders."""
    ids = [agent.session_id] + [c["id"] for c in agent.checkpoints()]
    for i, value in enumerate(ids):
        text = text.replace(value, f"{i:0{len(value)}d}")
    text = re.sub(r"terminal-\d+", "terminal-0", text)
    # The context estimate: "ctx   1% (  637/200k)" in text (or "ctx 1%" where the bar is
    # narrow), with &#160; for spaces in SVG.
    sp = r"(?:\s|&#160;)"
    return re.sub(
        rf"ctx{sp}+\d+%(?:{sp}*\({sp}*[\d.]+[kM]?/)?",
        lambda m: re.sub(r"\d", "#", m.group(0)),
        text,
    )


def check(app, agent, name: str) -> None:
    name = f"{name}_{app.size.width}x{app.size.height}"
    svg = normalise(app.export_screenshot(title="godwit"), agent)
    text = normalise(screen_text(app), agent)
    svg_path, text_path = SNAPSHOTS / f"{name}.svg", SNAPSHOTS / f"{name}.txt"
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        svg_path.write_text(svg, encoding="utf-8")
        text_path.write_text(text, encoding="utf-8")
        return
    if not svg_path.exists():
        pytest.fail(f"No snapshot {svg_path.name}; create it with GODWIT_UPDATE_SNAPSHOTS=1")
    expected_text = text_path.read_text(encoding="utf-8")
    diff = "\n".join(
        difflib.unified_diff(
            expected_text.splitlines(), text.splitlines(), "snapshot", "now", lineterm=""
        )
    )
    assert text == expected_text, f"screen {name} changed:\n{diff}"
    assert svg == svg_path.read_text(encoding="utf-8"), (
        f"screen {name} has the same text but different styles or colours than {svg_path.name}"
    )


async def settle(pilot) -> None:
    """Let late mounts (Markdown) finish and put the transcript at its end; a steady cursor
    (a blinking one is drawn or not depending on the moment)."""
    pilot.app.prompt_input.cursor_blink = False
    for _ in range(3):
        await pilot.pause()
        pilot.app.transcript.scroll_end(animate=False)
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
async def test_snapshot_finished_turn(repo, size):
    with make_agent(repo, SESSION_TURNS, mode="bypassPermissions") as agent:
        app = make_app(agent)
        async with app.run_test(size=size) as pilot:
            await send(pilot, "make answer() return 42")
            await until_idle(pilot)
            await settle(pilot)
            check(app, agent, "finished_turn")


@pytest.mark.parametrize("size", SIZES)
async def test_snapshot_approval_modal(repo, size):
    with make_agent(repo, [{"text": "Fixing it:", "tool_calls": [EDIT], "usage": USAGE}]) as agent:
        app = make_app(agent)
        async with app.run_test(size=size) as pilot:
            await send(pilot, "make answer() return 42")
            await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
            await settle(pilot)
            check(app, agent, "approval_modal")
            await pilot.press("n")
            await until_idle(pilot)


@pytest.mark.parametrize("size", SIZES)
async def test_snapshot_rewind_picker(repo, size):
    with make_agent(repo, SESSION_TURNS, mode="bypassPermissions") as agent:
        app = make_app(agent)
        async with app.run_test(size=size) as pilot:
            await send(pilot, "make answer() return 42")
            await until_idle(pilot)
            await settle(pilot)
            await pilot.press("escape", "escape")
            screen = await wait_for(
                pilot, lambda: isinstance(app.screen, RewindScreen) and app.screen
            )
            await pilot.press("up")
            preview = screen.query_one("#rewind-preview")
            wanted = f"checkpoint {screen.selected}"
            await wait_for(pilot, lambda: wanted in preview.content.plain)
            await pilot.pause()
            check(app, agent, "rewind_picker")
