"""What the app does to the session besides prompting: rewind (with its picker), undo-rewind
and compaction. Each reports in the transcript and refreshes the context gauge.
"""

from __future__ import annotations

import asyncio
from functools import partial

from agent import events as ev
from agent.describe import count
from agent.errors import GodwitError
from agent.ui.rewind_screen import Choice, RewindScreen
from agent.ui.surface import SessionApp


def open_rewind(app: SessionApp) -> None:
    """Show the checkpoint picker (Esc Esc, /rewind)."""
    if app.busy:
        return
    rows = app.agent.checkpoints()
    app.push_screen(RewindScreen(rows, app.agent.diff), partial(_rewind_chosen, app))


def _rewind_chosen(app: SessionApp, choice: Choice) -> None:
    if choice is None:
        return
    restore, checkpoint = choice
    if restore == "undo":
        app.run_worker(undo_rewind(app), group="command")
    else:
        app.run_worker(rewind(app, checkpoint, restore), group="command")


async def rewind(app: SessionApp, checkpoint: str, restore: str) -> None:
    """Restore code, conversation or both; after a conversation rewind the transcript is
    rebuilt and the prompt of that turn goes back into the input box."""
    app.busy = True
    try:
        result = await app.agent.arewind(checkpoint, restore)
    except GodwitError as exc:
        app.transcript.notice(f"rewind failed: {exc}", "error")
        return
    finally:
        app.busy = False
    if restore in ("conversation", "both"):
        app.transcript.load_messages(app.agent.messages(), app.agent.events)
        if result.get("prompt"):
            app.prompt_input.text = result["prompt"]
            app.prompt_input.move_cursor(app.prompt_input.document.end)
    changed = len(result.get("changed") or [])
    extra = f" ({count(changed, 'file')} changed)" if restore != "conversation" else ""
    app.transcript.notice(result["message"].replace("`godwit undo-rewind`", "/undo") + extra)
    app.refresh_context()


async def undo_rewind(app: SessionApp) -> None:
    """Bring back what the last rewind replaced (/undo, u in the picker)."""
    app.busy = True
    try:
        result = await app.agent.aundo_rewind()
    except GodwitError as exc:
        app.transcript.notice(f"undo failed: {exc}", "error")
        return
    finally:
        app.busy = False
    if result["restore"] in ("conversation", "both"):
        app.transcript.load_messages(app.agent.messages(), app.agent.events)
    app.transcript.notice(result["message"])
    app.refresh_context()


async def compact(app: SessionApp, instructions: str | None) -> None:
    """/compact: summarise the older conversation; the events it logs are shown."""
    seen: list[ev.Event] = []
    unsubscribe = app.agent.subscribe(seen.append)
    app.busy = True
    app.transcript.notice("compacting the conversation…", "dim-notice")
    task = asyncio.ensure_future(app.agent.acompact(instructions))
    # Esc / Ctrl+C stop the summary call; nothing is replaced until a summary is complete.
    app.interrupt_command = task.cancel
    try:
        result = await task
    except GodwitError as exc:
        result = {"status": "failed", "message": str(exc)}
    except asyncio.CancelledError:
        if not task.cancelled() or asyncio.current_task().cancelling():
            raise  # the app itself is stopping
        result = {"status": "failed", "message": "interrupted by the user"}
    finally:
        unsubscribe()
        app.interrupt_command = None
        app.busy = False
    # The events it recorded reached the transcript through the app's subscription.
    if result["status"] != "compacted" and not any(isinstance(e, ev.Error) for e in seen):
        app.transcript.notice(f"compaction failed: {result.get('message')}", "error")
    app.refresh_context()
