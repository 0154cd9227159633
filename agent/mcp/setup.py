"""From settings and flags to a running McpManager, with the project approval in between.

`prepare` collects the configured servers and decides, for each one a repository configured,
whether it may start: approved before for this project (remembered), `enableAllProjectMcpServers`
in the user's settings, or approved now by `ask` (the UI, line mode). A server that may not start
is kept with the state "not approved", so `godwit mcp list` and `/mcp` show it and say how to
approve it; headless runs never ask.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from agent.mcp.approval import NEEDS_APPROVAL, ApprovalStore
from agent.mcp.config import ServerSpec, collect
from agent.mcp.manager import McpManager

Ask = Callable[[ServerSpec], bool]


def approve_hint(name: str) -> str:
    return (
        f"MCP server {name!r} comes from this project and has not been approved: run "
        f"`godwit mcp approve {name}` (or approve it when the terminal UI asks)"
    )


def prepare(
    project: Path,
    home: Path,
    *,
    user_settings: Mapping[str, Any] | None = None,
    project_settings: Mapping[str, Any] | None = None,
    flags: list[str] = (),
    strict: bool = False,
    ask: Ask | None = None,
    on_failure: Callable[[str, str], None] | None = None,
    env: Mapping[str, str] | None = None,
) -> McpManager | None:
    """The session's manager (not started yet), or None when no server is configured: then the
    `mcp` package is never imported."""
    specs = collect(
        project,
        user_settings=user_settings,
        project_settings=project_settings,
        flags=list(flags),
        strict=strict,
        env=env,
    )
    if not specs:
        return None
    store = ApprovalStore(home)
    enable_all = bool((user_settings or {}).get("enableAllProjectMcpServers"))
    blocked: list[ServerSpec] = []
    for spec in specs:
        if spec.source not in NEEDS_APPROVAL or enable_all:
            continue
        answer = store.answer(project, spec)
        if answer == "unknown" and ask is not None and spec.error is None:
            approved = bool(ask(spec))
            store.remember(project, spec, approved)
            answer = "approved" if approved else "denied"
        if answer != "approved":
            blocked.append(spec)
    manager = McpManager(specs, cwd=project, on_failure=on_failure)
    for spec in blocked:
        server = manager.servers[spec.name]
        server.state = "not approved"
        server.error = approve_hint(spec.name)
        manager.note(spec.name, server.error)
    return manager


def describe(spec: ServerSpec) -> str:
    """One line naming what a server runs or where it connects (for approval prompts)."""
    config = spec.config
    if config is None:
        return f"{spec.name}: {spec.error}"
    if config.type == "stdio":
        return f"{spec.name}: runs `{' '.join([config.command, *config.args])}`"
    return f"{spec.name}: connects to {config.url}"
