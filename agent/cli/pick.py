"""`godwit --resume` without an id: choose one of this directory's sessions.

In a terminal the UI's session picker does it (the same one as /resume); without one (a pipe,
or no Textual) a numbered list is printed and a number read from stdin.
"""

from __future__ import annotations

import sys
from pathlib import Path

from agent.describe import count


def pick_session(cwd: Path) -> str | None:
    """The chosen session id, or None when there is none or the user chose none."""
    from agent.session.index import godwit_home, list_sessions

    rows = list_sessions(godwit_home(), cwd.resolve())
    if not rows:
        print("No sessions to resume in this directory; `godwit` starts one.")
        return None
    if sys.stdin.isatty() and sys.stdout.isatty():
        try:
            from agent.ui.resume_screen import run_picker
        except ImportError:
            pass
        else:
            return run_picker(rows)
    for number, row in enumerate(rows, start=1):
        when = (row.get("last_activity") or "")[:16].replace("T", " ")
        print(f"{number:>3}. {when}  {count(row['turns'], 'turn'):>9}  "
              f"{(row['first_prompt'] or '(no prompt)')[:50]}  {row['id']}")
    try:
        answer = input("Resume which session? (number, empty to cancel) ").strip()
    except EOFError:
        return None
    if answer.isdigit() and 1 <= int(answer) <= len(rows):
        return rows[int(answer) - 1]["id"]
    return None
