"""Assembling a Runtime from options: settings, session (new, resumed or forked), provider, tools.

Heavy imports (the provider SDKs, git, torch for local models) happen here lazily, only for what
the chosen options need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent import events as ev
from agent.errors import UsageError
from agent.hooks import Hooks
from agent.permissions import Approver, PermissionPolicy
from agent.prompt import system_prompt
from agent.runtime import Runtime
from agent.session.index import godwit_home
from agent.session.open import open_for
from agent.settings import Settings, load_settings


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


def open_runtime(opts: Options) -> Runtime:
    cwd = Path(opts.cwd).expanduser().resolve()
    if not cwd.is_dir():
        raise UsageError(f"The working directory {cwd} does not exist or is not a directory")
    home = (opts.home or godwit_home()).expanduser().resolve()
    settings = load_settings(home, cwd, opts.overrides)
    # A torn last line of the log is reported through `session.warnings` (the headless
    # printer and the UI show them).
    session, resumed_from = open_for(
        home,
        cwd,
        resume=opts.resume,
        continue_latest=opts.continue_latest,
        fork=opts.fork,
        readonly=opts.readonly,
    )
    provider = opts.provider or make_provider(settings)
    tools = _tools(settings, home, cwd) + list(opts.extra_tools)
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise UsageError(
            f"Two tools share a name: {sorted(n for n in names if names.count(n) > 1)}"
        )
    rt = Runtime(
        settings=settings,
        cwd=cwd,
        home=home,
        session=session,
        provider=provider,
        tools=tools,
        base_system=_system(settings, cwd, provider),
        policy=PermissionPolicy(
            settings.permission_mode, settings.permissions, cwd=cwd, tools=names
        ),
        hooks=opts.hooks,
        approver=opts.approver,
    )
    rt.checkpointer = _checkpointer(settings, home, cwd)
    rt.context = _context(settings, provider)
    rt.context.restore(session.events)
    if not session.events or resumed_from:
        start = ev.SessionStarted(
            session_id=session.id,
            cwd=str(cwd),
            model=settings.model,
            permission_mode=settings.permission_mode,
            forked_from=resumed_from,
        )
        rt.recorder.write(start, sync=True)
    return rt


def make_provider(settings: Settings):
    from agent.providers import make_provider as factory

    return factory(settings.model, base_url=settings.base_url, **settings.provider_options)


def _tools(settings: Settings, home: Path, cwd: Path) -> list[Any]:
    from tools import default_tools
    from tools.memory import memory_root

    root = None
    if settings.memory:
        root = memory_root(home, None if settings.memory_scope == "global" else cwd)
    return list(default_tools(root))


def _system(settings: Settings, cwd: Path, provider: Any) -> str:
    hint = None
    if settings.memory and getattr(provider, "name", "") != "anthropic":
        # Claude knows the memory tool's protocol; other models get the short instruction.
        from tools.memory import MEMORY_SYSTEM_PROMPT

        hint = MEMORY_SYSTEM_PROMPT
    return system_prompt(cwd, extra=settings.system_prompt, memory_hint=hint)


def _checkpointer(settings: Settings, home: Path, cwd: Path):
    if not settings.checkpoints:
        return None
    from agent.session.checkpointer import Checkpointer

    return Checkpointer(cwd, home, size_cap=settings.checkpoint_size_cap)


def _context(settings: Settings, provider: Any):
    from agent.context.manager import ContextRuntime

    return ContextRuntime.from_settings(settings, provider)
