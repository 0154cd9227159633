"""`godwit mcp list | approve NAME... | deny NAME...` (and the rows `/mcp` shows in the UI).

`list` starts every usable server (as a session would, with the same time limits), prints each
one's source, transport, state and tools, and stops them again; `--json` prints the rows as a
JSON array. `approve` / `deny` record the answer for servers that this project configures.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from agent.errors import UsageError
from agent.mcp.approval import NEEDS_APPROVAL, ApprovalStore
from agent.mcp.config import collect
from agent.mcp.setup import prepare


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="godwit mcp",
        description="MCP servers of this project: .mcp.json, mcpServers in settings, --mcp-config.",
    )
    sub = p.add_subparsers(dest="action", required=True)
    ls = sub.add_parser("list", help="start the servers, show state and tools, stop them")
    ls.add_argument("--json", action="store_true", help="one JSON array")
    ls.add_argument("--mcp-config", action="append", default=[], metavar="FILE_OR_JSON")
    ls.add_argument("--strict-mcp-config", action="store_true")
    for name, text in (("approve", "allow"), ("deny", "refuse")):
        cmd = sub.add_parser(name, help=f"{text} servers this project's .mcp.json configures")
        cmd.add_argument("names", nargs="*", metavar="NAME")
        cmd.add_argument("--all", action="store_true", help="every server of the project")
    return p


def rows(
    project: Path,
    home: Path,
    *,
    user_settings: Mapping[str, Any] | None = None,
    project_settings: Mapping[str, Any] | None = None,
    flags: list[str] = (),
    strict: bool = False,
) -> list[dict[str, Any]]:
    """One row per configured server after trying to start it."""
    manager = prepare(
        project,
        home,
        user_settings=user_settings,
        project_settings=project_settings,
        flags=flags,
        strict=strict,
    )
    if manager is None:
        return []
    try:
        manager.start()
        return manager.status()
    finally:
        manager.close()


def format_rows(table: list[dict[str, Any]]) -> str:
    """The human form of `rows` (also what `/mcp` shows)."""
    if not table:
        return "No MCP servers configured (.mcp.json, mcpServers in settings, --mcp-config)."
    lines = []
    for row in table:
        head = f"{row['name']}  [{row['source']}, {row['transport']}]  {row['state']}"
        if row.get("server"):
            head += f"  ({row['server']})"
        lines.append(head)
        if row.get("error"):
            lines.append(f"    {row['error']}")
        for tool in row.get("tools") or []:
            lines.append(f"    mcp__{row['name']}__{tool}")
    return "\n".join(lines)


def run(
    argv: list[str],
    project: Path,
    home: Path,
    settings_layers: Callable[[], tuple],
    out: Callable[[str], None] = print,
) -> int:
    """The `godwit mcp` subcommand; `settings_layers()` gives (user, project) settings dicts."""
    args = parser().parse_args(argv)
    user, proj = settings_layers()
    if args.action == "list":
        table = rows(
            project,
            home,
            user_settings=user,
            project_settings=proj,
            flags=args.mcp_config,
            strict=args.strict_mcp_config,
        )
        out(json.dumps(table, indent=2) if args.json else format_rows(table))
        return 0
    specs = [
        s
        for s in collect(project, user_settings=user, project_settings=proj)
        if s.source in NEEDS_APPROVAL
    ]
    names = {s.name for s in specs} if args.all else set(args.names)
    unknown = names - {s.name for s in specs}
    if unknown or not names:
        known = ", ".join(sorted(s.name for s in specs)) or "none"
        raise UsageError(
            f"No project MCP server named {', '.join(sorted(unknown)) or '(none given)'}"
            f"; this project configures: {known}"
        )
    store = ApprovalStore(home)
    for spec in specs:
        if spec.name in names:
            store.remember(project, spec, args.action == "approve")
            out(f"{spec.name}: {'approved' if args.action == 'approve' else 'denied'}")
    return 0
