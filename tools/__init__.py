"""What the model can call: the tools, a factory for the default set, and session cleanup.

Every tool follows `tools.base.Tool`: `name`, `input_model`, `description()`,
`anthropic_spec()`, `openai_spec()`, `is_read_only(args)`, `run(args, ctx) -> ToolResult`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .base import Tool, ToolContext, ToolResult, function_spec, validation_message
from .bash import BashTool
from .editor import EditorTool
from .memory import MEMORY_SYSTEM_PROMPT, MemoryConfig, MemoryTool, memory_root
from .sandbox import SandboxConfig, sandbox_status
from .search import GlobTool, GrepTool

__all__ = [
    "MEMORY_SYSTEM_PROMPT",
    "BashTool",
    "EditorTool",
    "GlobTool",
    "GrepTool",
    "MemoryConfig",
    "MemoryTool",
    "SandboxConfig",
    "Tool",
    "ToolContext",
    "ToolResult",
    "close_all",
    "default_tools",
    "function_spec",
    "memory_root",
    "sandbox_status",
    "validation_message",
]

log = logging.getLogger(__name__)

CLOSERS_KEY = "_closers"


def default_tools(
    memory_root: Path | None,
    *,
    sandbox: SandboxConfig | None = None,
    extra_dirs: list[Path] | None = None,
    env: dict[str, str] | None = None,
) -> list[Tool]:
    """bash, the editor, glob, grep, and the memory tool when a memory root is given.
    `sandbox`: bash's sandbox settings (None: no sandbox); `extra_dirs`: more folders the
    sandboxed commands may write; `env` is added to the shell's environment (the settings'
    `env` key)."""
    tools: list[Tool] = [
        BashTool(sandbox=sandbox, extra_dirs=extra_dirs, extra_env=env),
        EditorTool(),
        GlobTool(),
        GrepTool(),
    ]
    if memory_root is not None:
        tools.append(MemoryTool(memory_root))
    return tools


def close_all(ctx: ToolContext) -> None:
    """End of session: run every closer the tools registered in ctx.state["_closers"]
    (today: the bash shell). Never raises; safe to call more than once."""
    closers = ctx.state.get(CLOSERS_KEY)
    if not isinstance(closers, dict):
        return
    for name, close in list(closers.items()):
        closers.pop(name, None)
        try:
            close()
        except Exception:  # cleanup must go on for the others
            log.exception("closing tool state %s failed", name)
