"""The system prompt: who the agent is, where it runs, and the project's own instructions."""

from __future__ import annotations

import platform
from datetime import date
from pathlib import Path
from typing import Any

BASE = """You are Godwit, a coding agent working in the user's repository through tools.

How to work:
- Read before you change: view files and search (glob, grep) to understand the code first.
- Make focused edits with str_replace_based_edit_tool; old_str must match the file exactly once.
- Use bash to run tests, builds and commands. Commands run in a persistent shell in the work tree;
  the user may have to approve commands and edits.
- Every change you make is checkpointed and can be rolled back by the user, but still avoid
  destructive commands (rm -rf, git reset --hard, force pushes) unless explicitly asked.
- When a tool returns an error, read it and correct your call rather than repeating it.
- Keep answers short. When the task is done, say what you changed and how you checked it."""


PLAN_MODE = """Plan mode is on: only read-only tools (viewing files, glob, grep) will run; edits
and commands are refused. Investigate, then answer with a concrete plan (files, changes, how to
check them) for the user to approve."""


def instruction_section(file: Any) -> str:
    """How one instruction file (agent.project.InstructionFile) appears in the system prompt."""
    return f"Instructions from {file.label} (follow them):\n\n{file.text.strip()}"


def system_prompt(
    cwd: Path,
    *,
    instructions: list[Any] = (),
    extra: str | None = None,
    memory_hint: str | None = None,
    replace: str | None = None,
    append: str | None = None,
) -> str:
    """The session's system prompt before the mode's part (`for_mode` adds that per request):
    Godwit's instructions (or `replace`), the environment, the instruction files (user level,
    then the project root down to the current folder), the memory hint, the settings' extra
    text, then `append`."""
    parts = [replace.strip() if replace else BASE]
    parts.append(
        f"Environment: working directory {Path(cwd).resolve()}; platform "
        f"{platform.system()} {platform.release()}; today is {date.today().isoformat()}."
    )
    parts.extend(instruction_section(f) for f in instructions)
    if memory_hint:
        parts.append(memory_hint)
    if extra:
        parts.append(extra.strip())
    if append:
        parts.append(append.strip())
    return "\n\n".join(parts)


def for_mode(system: str, mode: str) -> str:
    """`system` as told in permission mode `mode`: plan mode adds its rules after the base
    instructions. Applied to each request, so switching modes mid-session changes it."""
    if mode != "plan":
        return system
    if system.startswith(BASE):
        return f"{BASE}\n\n{PLAN_MODE}{system[len(BASE) :]}"
    return f"{PLAN_MODE}\n\n{system}"
