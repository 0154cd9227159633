"""Godwit's terminal UI (Textual). The only package that imports textual.

app = make_app(agent)            # build without running (tests drive it with run_test)
status = run_app(agent, "hi")    # run in the terminal; returns the exit status
"""

from __future__ import annotations

# Imported eagerly: without textual this import fails and `godwit` falls back to line mode.
from agent.ui.app import GodwitApp

__all__ = ["GodwitApp", "make_app", "run_app"]


def make_app(agent, first_prompt: str | None = None) -> GodwitApp:
    """The app around `agent` (an `agent.Agent`), not started; no side effects."""
    return GodwitApp(agent, first_prompt)


def run_app(agent, first_prompt: str | None = None) -> int:
    """Run the UI in this terminal until the user quits; returns the exit status."""
    # Open (or resume) the session first: a bad model spec or session id is reported by the
    # CLI as one clear line, not from inside the full-screen app.
    agent.runtime()
    app = make_app(agent, first_prompt)
    result = app.run()
    if agent.saved:
        # The screen is back to the shell's: say how to come back to this conversation.
        from agent.describe import resume_hint

        print(resume_hint(agent.session_id))
    return int(result if result is not None else (app.return_code or 0))
