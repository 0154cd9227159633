"""Assembling a Runtime from options: settings, session (new, resumed or forked), provider, tools.

Heavy imports (the provider SDKs, git, torch for local models) happen here lazily, only for what
the chosen options need.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent import events as ev
from agent.errors import ConfigError, UsageError
from agent.hooks import Hooks
from agent.permissions import Approver, PermissionPolicy
from agent.project import instruction_files, project_root
from agent.prompt import system_prompt
from agent.providers.base import close_provider
from agent.runtime import Runtime
from agent.session.index import godwit_home
from agent.session.open import open_for
from agent.settings import Settings, load_settings, merge
from tools.base import ToolContext


@dataclass
class Options:
    """What the SDK or the CLI asks for; settings files fill in the rest."""

    cwd: Path = Path(".")
    overrides: dict[str, Any] = field(default_factory=dict)
    extra_tools: list[Any] = field(default_factory=list)
    hooks: Hooks = field(default_factory=Hooks)
    approver: Approver | None = None
    provider: Any = None
    home: Path | None = None
    resume: str | None = None
    continue_latest: bool = False
    fork: bool = False
    # Open an existing session only to look at it (listings, diffs): no lock, no writes.
    readonly: bool = False
    # A `--settings` layer (between the project's local settings and the flags).
    settings_layer: dict[str, Any] = field(default_factory=dict)
    # MCP: `--mcp-config` values, `--strict-mcp-config`, and who approves a project's servers
    # (the UI asks; None: unapproved servers stay off).
    mcp_config: list[str] = field(default_factory=list)
    strict_mcp_config: bool = False
    mcp_ask: Callable[[Any], bool] | None = None
    # Who approves the hooks and env of the project's own settings (the terminal asks; None:
    # they stay off unless approved before, e.g. with `godwit trust`).
    trust_ask: Callable[[str], bool] | None = None
    # How to reach `type: "sdk"` servers (a Claude Agent SDK program's own; agent/mcp/bridge.py).
    mcp_sdk_send: Any = None
    # More hook sources beside the settings' shell hooks (an SDK program's callbacks): each a
    # function of the runtime that returns the source.
    hook_sources: list[Callable[[Runtime], Any]] = field(default_factory=list)


def open_runtime(opts: Options) -> Runtime:
    cwd = Path(opts.cwd).expanduser().resolve()
    if not cwd.is_dir():
        raise UsageError(f"The working directory {cwd} does not exist or is not a directory")
    home = (opts.home or godwit_home()).expanduser().resolve()
    # One project per repository: sessions, checkpoints, settings and memory belong to the
    # enclosing work tree; the user's folder is where the shell starts and paths are read from.
    root = project_root(cwd)
    settings = load_settings(home, root, opts.overrides, opts.settings_layer)
    # A torn last line of the log is reported through `session.warnings` (the headless
    # printer and the UI show them).
    session, resumed_from = open_for(
        home,
        root,
        resume=opts.resume,
        continue_latest=opts.continue_latest,
        fork=opts.fork,
        readonly=opts.readonly,
    )
    recorded = session_model(session.events)
    if recorded and "model" not in opts.overrides:
        # A resumed session keeps its own model and provider unless the caller names one.
        settings = settings.model_copy(update={"model": recorded})
    settings = _admit_project_code(settings, home, root, opts, session)
    provider = opts.provider or make_provider(settings)
    model_spec = resolved_spec(settings.model, provider)
    extra_dirs = _extra_dirs(settings, cwd)
    mcp = None if opts.readonly else _mcp(opts, settings, home, root)
    tools = _tools(settings, home, root, extra_dirs) + list(opts.extra_tools)
    if mcp is not None:
        tools += mcp.start()
    bash = next((t for t in tools if t.name == "bash" and hasattr(t, "sandboxed")), None)
    if bash is not None and bash.sandbox_unavailable_reason():
        # Said once per session start, where the torn-log warnings are shown.
        session.warnings.append(
            f"bash runs without a sandbox ({bash.sandbox_unavailable_reason()}); "
            "commands are asked about instead."
        )
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise UsageError(
            f"Two tools share a name: {sorted(n for n in names if names.count(n) > 1)}"
        )
    instructions = instruction_files(root, cwd, home)
    rt = Runtime(
        settings=settings,
        cwd=cwd,
        home=home,
        session=session,
        provider=provider,
        tools=tools,
        base_system=_system(settings, cwd, provider, instructions),
        policy=PermissionPolicy(
            settings.permission_mode,
            settings.permissions,
            cwd=root,
            tools=names,
            sandboxed=bool(bash is not None and bash.sandboxed),
        ),
        hooks=opts.hooks,
        approver=opts.approver,
        tool_ctx=ToolContext(cwd=cwd, root=root, extra_dirs=extra_dirs),
        root=root,
        instructions=instructions,
        model_spec=model_spec,
        owns_provider=opts.provider is None,
    )
    rt.mcp = mcp
    rt.resumed = bool(session.events)
    rt.hooks_of_session = _hooks(rt, settings, opts)
    rt.checkpointer = _checkpointer(settings, home, root)
    if session.events and not opts.readonly:
        _complete_interrupted_rewinds(rt)
    rt.context = _context(settings, provider)
    rt.context.restore(session.events)
    rt.recorder.appliers.append(lambda event: _apply_model(rt, event))
    if not session.events or resumed_from:
        start = ev.SessionStarted(
            session_id=session.id,
            cwd=str(cwd),
            model=model_spec,
            permission_mode=settings.permission_mode,
            forked_from=resumed_from,
        )
        rt.recorder.write(start, sync=True)
    elif recorded and model_spec != recorded and not opts.readonly:
        # Resumed with another --model: the log says from which point the new one answered.
        rt.recorder.write(ev.ModelChanged(model=model_spec, previous=recorded), sync=True)
    return rt


def _complete_interrupted_rewinds(rt: Runtime) -> None:
    """A rewind killed mid-restore is finished on resume, code and conversation together."""
    from agent.session.rewind import interrupted_rewinds

    for event in interrupted_rewinds(rt):
        rt.recorder.write(event, sync=True)


def _admit_project_code(settings: Settings, home: Path, root: Path, opts: Options, session):
    """The settings with the project's hooks and env in them once the user approved them;
    otherwise without, and a warning says so."""
    from agent.project_trust import admit

    held = settings.project_held
    if not held:
        return settings
    admitted, warning = admit(held, home, root, None if opts.readonly else opts.trust_ask)
    if warning and not opts.readonly:
        session.warnings.append(warning)
    if not admitted:
        return settings
    merged = merge({"hooks": held.get("hooks") or {}}, {"hooks": settings.hooks})
    from agent.command_hooks.config import HooksConfig

    try:
        HooksConfig.parse(merged["hooks"])
    except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"Invalid hooks in {root / '.godwit'}: {exc}") from None
    update = {"hooks": merged["hooks"], "env": {**(held.get("env") or {}), **settings.env}}
    if held.get("base_url") and "base_url" not in opts.overrides:
        update["base_url"] = held["base_url"]
    return settings.model_copy(update=update)


def session_model(events: list[ev.Event]) -> str | None:
    """The model a session was last using: its last ModelChanged, else its SessionStarted."""
    for event in reversed(events):
        if isinstance(event, (ev.ModelChanged, ev.SessionStarted)):
            return event.model
    return None


def resolved_spec(spec: str, provider: Any) -> str:
    """The spec with an alias replaced by the id the provider resolved it to, so a session
    records `anthropic:claude-sonnet-5-5`, not `sonnet` (which a newer SDK may move)."""
    if getattr(provider, "name", "") == "anthropic" and getattr(provider, "model", None):
        return f"anthropic:{provider.model}"
    return spec


async def switch_model(rt: Runtime, spec: str) -> str:
    """Make `spec` the model of the next request (recorded as ModelChanged); returns the
    recorded spec. Raises ConfigError / ProviderError when it cannot be built (no change)."""
    provider = make_provider(rt.settings.model_copy(update={"model": spec}))
    resolved = resolved_spec(spec, provider)
    if resolved != rt.model_spec:
        rt.pending_provider = (resolved, provider)
        await rt.record(ev.ModelChanged(model=resolved, previous=rt.model_spec), sync=True)
    return resolved


def _apply_model(rt: Runtime, event: ev.Event) -> None:
    if not isinstance(event, ev.ModelChanged):
        return
    pending = rt.pending_provider
    rt.pending_provider = None
    if pending and pending[0] == event.model:
        provider = pending[1]
    else:
        provider = make_provider(rt.settings.model_copy(update={"model": event.model}))
    if rt.owns_provider:
        close_provider(rt.provider)
    rt.provider, rt.owns_provider = provider, True
    rt.model_spec = event.model
    rt.settings = rt.settings.model_copy(update={"model": event.model})
    rt.base_system = _system(rt.settings, rt.cwd, provider, rt.instructions)
    rt.context = _context(rt.settings, provider)
    rt.context.restore(rt.session.events)


def _extra_dirs(settings: Settings, cwd: Path) -> tuple[Path, ...]:
    dirs = []
    for raw in settings.add_dirs:
        folder = (cwd / Path(raw).expanduser()).resolve()
        if not folder.is_dir():
            raise UsageError(f"--add-dir: {raw} is not a folder")
        dirs.append(folder)
    return tuple(dirs)


def make_provider(settings: Settings):
    from agent.providers import make_provider as factory

    return factory(settings.model, base_url=settings.base_url, **settings.provider_options.given())


def _tools(
    settings: Settings, home: Path, cwd: Path, extra_dirs: tuple[Path, ...] = ()
) -> list[Any]:
    from tools import default_tools
    from tools.memory import memory_root

    root = None
    if settings.memory:
        root = memory_root(home, None if settings.memory_scope == "global" else cwd)
    tools = list(
        default_tools(root, sandbox=settings.sandbox, extra_dirs=list(extra_dirs), env=settings.env)
    )
    return tools


def _mcp(opts: Options, settings: Settings, home: Path, cwd: Path):
    """The session's MCP servers (not started), or None when none is configured: then the
    `mcp` package is never imported."""
    from agent.mcp.session import McpSession
    from agent.mcp.setup import prepare
    from agent.settings import read_layer

    user = read_layer(home / "settings.json")
    # Overrides (SDK arguments, --settings) count as the user's own configuration.
    user = {
        **user,
        "mcpServers": {**user.get("mcpServers", {}), **opts.overrides.get("mcpServers", {})},
    }
    user["enableAllProjectMcpServers"] = settings.enableAllProjectMcpServers
    manager = prepare(
        cwd,
        home,
        user_settings=user,
        project_settings=read_layer(cwd / ".godwit" / "settings.json"),
        flags=opts.mcp_config,
        strict=opts.strict_mcp_config,
        ask=opts.mcp_ask,
        env={**os.environ, **settings.env},
    )
    if manager is None:
        return None
    manager.sdk_send = opts.mcp_sdk_send
    return McpSession(manager)


def _hooks(rt: Runtime, settings: Settings, opts: Options):
    """Claude Code's hooks: the settings' shell hooks, then any other sources."""
    from agent.command_hooks import CommandHooks
    from agent.command_hooks.session import SessionHooks

    sources: list[Any] = []
    if settings.hooks:
        sources.append(
            CommandHooks(
                settings.hooks,
                cwd=rt.cwd,
                env=settings.env,
                session_id=rt.id,
                transcript_path=str(getattr(rt.session.log, "path", "")),
            )
        )
    sources += [make(rt) for make in opts.hook_sources]
    hooks = SessionHooks(sources)
    hooks.set_permission_mode(rt.policy.mode)
    return hooks


def _system(settings: Settings, cwd: Path, provider: Any, instructions: list) -> str:
    hint = None
    if settings.memory and getattr(provider, "name", "") != "anthropic":
        # Claude knows the memory tool's protocol; other models get the short instruction.
        from tools.memory import MEMORY_SYSTEM_PROMPT

        hint = MEMORY_SYSTEM_PROMPT
    return system_prompt(
        cwd,
        instructions=instructions,
        extra=settings.system_prompt,
        memory_hint=hint,
        replace=settings.replace_system_prompt,
        append=settings.append_system_prompt,
    )


def _checkpointer(settings: Settings, home: Path, cwd: Path):
    if not settings.checkpoints:
        return None
    from agent.session.checkpointer import Checkpointer

    return Checkpointer(cwd, home, size_cap=settings.checkpoint_size_cap)


def _context(settings: Settings, provider: Any):
    from agent.context.manager import ContextRuntime

    return ContextRuntime.from_settings(settings, provider)
