"""Helpers for driving the Textual UI with `run_test` and `Pilot` on a scripted session.

Real parts everywhere except the model: a real git repository in tmp_path, real tools (bash,
the editor), real checkpoints, a real session log under the per-test GODWIT_HOME.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from agent import Agent
from agent.providers.scripted import ScriptedProvider
from agent.ui import make_app  # noqa: F401 - the tests take it from here

SIZE = (100, 30)


def make_agent(
    root: Path,
    turns: list[dict],
    mode: str = "default",
    provider: ScriptedProvider | None = None,
    **settings: Any,
) -> Agent:
    return Agent(
        cwd=root,
        permission_mode=mode,
        settings=settings or None,
        provider=provider or ScriptedProvider(turns),
    )


async def wait_for(
    pilot, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
) -> Any:
    """Let the app run until `predicate()` is truthy (fails the test after `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def send(pilot, text: str) -> None:
    """Put `text` in the input box and press Enter."""
    pilot.app.prompt_input.text = text
    await pilot.press("enter")
    await pilot.pause()


async def until_idle(pilot, timeout: float = 15.0) -> None:
    """Wait for the running prompt (or command) to finish and its messages to be handled."""
    app = pilot.app
    await pilot.pause()
    await wait_for(pilot, lambda: not app.busy and not _running(app), timeout, "the app to be idle")
    await pilot.pause()


def _running(app) -> bool:
    return any(w.group in ("turn", "command") and not w.is_finished for w in app.workers)


def screen_text(app) -> str:
    """The current screen as plain text (what the SVG shows, without colours)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system=None,
        record=True,
        legacy_windows=False,
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text()


def transcript_text(app) -> str:
    """All text in the transcript, scrolled out of view or not."""
    parts = []
    for widget in app.transcript.query("*"):
        content = getattr(widget, "content", None)  # Static's last update
        if content is not None and str(content):
            parts.append(str(content))
        source = getattr(widget, "source", None)  # Markdown's source text
        if isinstance(source, str):
            parts.append(source)
    return "\n".join(parts)
