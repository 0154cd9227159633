"""Subcommands: sessions, checkpoints, rewind, undo-rewind, diff, demo, mcp.

None of them calls a model, so none needs an API key: they open the session with an offline
stand-in provider.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.describe import checkpoint_label, count
from agent.errors import UsageError
from agent.project import project_root
from agent.textsafe import safe_data, safe_text


def print_json(rows: Any) -> None:
    """A listing or report as indented JSON on stdout (the `--json` output)."""
    # Non-UTF-8 file names are spelled \xNN (agent.textsafe): the output is always UTF-8.
    print(json.dumps(safe_data(rows), indent=2, ensure_ascii=False, default=str))


class _Offline:
    """Stands in for the provider where no model is called."""

    name = "offline"
    context_window = 200_000

    def __init__(self, model: str) -> None:
        self.model = model

    def stream(self, request):  # pragma: no cover - never called
        raise UsageError("this command does not call a model")

    async def count_tokens(self, request) -> None:
        return None

    def cost(self, usage) -> float:
        return 0.0


def _parser(name: str, help_text: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"godwit {name}", description=help_text)
    p.add_argument("--cwd", metavar="DIR", help="project directory (default: current)")
    return p


def _session_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--session", metavar="ID", help="session id (default: the newest here)")


def _agent(args: argparse.Namespace, *, readonly: bool = False):
    from agent.sdk import Agent

    cwd = Path(args.cwd or os.getcwd())
    session = getattr(args, "session", None)
    agent = Agent(
        cwd=cwd, provider=_Offline(""), session_id=session, continue_latest=session is None
    )
    agent.options.readonly = readonly
    return agent


def run_subcommand(name: str, argv: Sequence[str]) -> int:
    return {
        "sessions": _sessions,
        "checkpoints": _checkpoints,
        "rewind": _rewind,
        "undo-rewind": _undo,
        "diff": _diff,
        "demo": _demo,
        "mcp": _mcp,
        "trust": _trust,
    }[name](list(argv))


def _mcp(argv: list[str]) -> int:
    """`godwit mcp list | approve | deny` (agent/mcp/commands.py), for the current folder."""
    from agent.mcp import commands
    from agent.session.index import godwit_home
    from agent.settings import read_layer

    cwd = project_root(Path(os.getcwd()).resolve())
    home = godwit_home()

    def layers() -> tuple[dict, dict]:
        return read_layer(home / "settings.json"), read_layer(cwd / ".godwit" / "settings.json")

    return commands.run(argv, cwd, home, layers)


def _trust(argv: list[str]) -> int:
    """`godwit trust [--revoke]`: approve (or refuse) the hooks and env of this project's own
    settings, which otherwise never take effect (agent/project_trust.py)."""
    from agent.project_trust import ProjectTrust, describe
    from agent.session.index import godwit_home
    from agent.settings import load_settings

    p = _parser("trust", "Approve the hooks and env that this project's .godwit settings set.")
    p.add_argument("--revoke", action="store_true", help="refuse them instead")
    args = p.parse_args(argv)
    home, root = godwit_home(), project_root(Path(args.cwd or os.getcwd()).resolve())
    held = load_settings(home, root).project_held
    if not held:
        print("This project's settings set no hooks and no env; nothing to approve.")
        return 0
    ProjectTrust(home).remember(root, held, not args.revoke)
    verb = "Refused" if args.revoke else "Approved"
    print(f"{verb} for {root} (asked again if they change):\n{describe(held)}")
    return 0


def _sessions(argv: list[str]) -> int:
    p = _parser("sessions", "List this project's sessions, newest activity first.")
    p.add_argument("--json", action="store_true", help="print one JSON array")
    p.add_argument("--all", action="store_true", help="every project's sessions")
    args = p.parse_args(argv)
    from agent.session.index import godwit_home, list_sessions

    cwd = Path(args.cwd or os.getcwd()).resolve()
    rows = list_sessions(godwit_home(), None if args.all else project_root(cwd))
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("No sessions yet." if args.all else "No sessions yet in this directory.")
        return 0
    # With --all the sessions come from many folders: say which (a session resumes there).
    head = f"{'ID':<24} {'STARTED':<20} {'LAST ACTIVITY':<20} {'TURNS':>5}  "
    print(head + (f"{'FIRST PROMPT':<40}  FOLDER" if args.all else "FIRST PROMPT"))
    for r in rows:
        line = (
            f"{r['id']:<24} {_short(r['created']):<20} {_short(r['last_activity']):<20} "
            f"{r['turns']:>5}  "
        )
        if args.all:
            line += f"{_first_line(r['first_prompt'], 40):<40}  {r.get('cwd', '')}"
        else:
            line += _first_line(r["first_prompt"])
        print(line)
    return 0


def _short(ts: str | None) -> str:
    return (ts or "")[:19].replace("T", " ")


def _first_line(text: str, width: int = 60) -> str:
    """A multi-line prompt or label as one table cell."""
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= width else line[: width - 1] + "…"


def _checkpoints(argv: list[str]) -> int:
    p = _parser("checkpoints", "List the checkpoints of a session (default: the newest here).")
    _session_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON array")
    p.add_argument("--prune", action="store_true", help="delete old checkpoints")
    p.add_argument(
        "--older-than",
        default="30d",
        metavar="AGE",
        help="with --prune: age such as 30d, 12h, 90m (default 30d)",
    )
    args = p.parse_args(argv)
    cwd = Path(args.cwd or os.getcwd()).resolve()
    if args.prune:
        from agent.session.prune import prune

        report = prune(project_root(cwd), args.older_than)
        print_json(report) if args.json else print(safe_text(report["message"]))
        return 0
    if args.session is None and _no_session_here(cwd):
        # Nothing to list is an answer, not an error.
        print_json([]) if args.json else print("No sessions here yet, so no checkpoints.")
        return 0
    with _agent(args, readonly=True) as agent:
        rows = agent.checkpoints()
        if args.json:
            print_json(rows)
            return 0
        if not rows:
            print("No checkpoints in this session.")
            return 0
        print(f"{'ID':<10} {'CREATED':<20} {'TURN':>4}  {'FILES':<10} LABEL")
        for r in rows:
            print(
                f"{r['id']:<10} {_short(r['created']):<20} {r['turn']:>4}  "
                f"{_restores(r):<10} {safe_text(_first_line(checkpoint_label(r['label'])))}"
            )
        size = rows[-1].get("store_size_bytes")
        if size is not None:
            print(f"\nStore size: {size / 2**20:.1f} MiB")
    return 0


def _no_session_here(cwd: Path) -> bool:
    from agent.session.index import godwit_home, latest_session

    return latest_session(godwit_home(), project_root(cwd)) is None


def _restores(row: dict[str, Any]) -> str:
    """The FILES cell: how many files restoring this checkpoint's code would change now
    (what `godwit diff ID` shows), or that it would change nothing."""
    if not row.get("has_code"):
        return "(pruned)" if row.get("code_ref") else "(no code)"
    changes = row.get("restores")
    if changes is None:
        return "?"
    return count(len(changes), "file") if changes else "no change"


def _rewind(argv: list[str]) -> int:
    p = _parser(
        "rewind",
        "Restore code, conversation or both to a checkpoint (undo with `godwit undo-rewind`).",
    )
    p.add_argument("checkpoint", help="checkpoint id (a unique prefix is enough)")
    _session_arg(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--code", dest="restore", action="store_const", const="code")
    g.add_argument("--conversation", dest="restore", action="store_const", const="conversation")
    g.add_argument("--both", dest="restore", action="store_const", const="both")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    with _agent(args) as agent:
        report = agent.rewind(args.checkpoint, args.restore or "both")
    print_json(report) if args.json else print(safe_text(report["message"]))
    return 0


def _undo(argv: list[str]) -> int:
    p = _parser("undo-rewind", "Undo the last rewind of a session, exactly.")
    _session_arg(p)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    with _agent(args) as agent:
        report = agent.undo_rewind()
    print_json(report) if args.json else print(safe_text(report["message"]))
    return 0


def _diff(argv: list[str]) -> int:
    p = _parser("diff", "Show what `godwit rewind CHECKPOINT --code` would change.")
    p.add_argument("checkpoint")
    _session_arg(p)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    with _agent(args, readonly=True) as agent:
        report = agent.diff(args.checkpoint)
    if args.json:
        print_json(report)
    else:
        print(safe_text(report["text"] or "No differences: the work tree matches the checkpoint."))
    return 0


def _demo(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="godwit demo",
        description=(
            "Run a scripted session offline (no API key) on a small project it creates under "
            "GODWIT_HOME/demo/: the agent finds and fixes a bug, with checkpoints you can rewind."
        ),
    )
    p.add_argument("--output-format", choices=("text", "stream-json"), default="text")
    p.add_argument("--fast", action="store_true", help="no typing delay")
    args = p.parse_args(argv)
    from agent.cli.demo import run_demo

    return asyncio.run(run_demo(args.output_format, delay=0.0 if args.fast else 0.02))
