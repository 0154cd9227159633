"""What every tool is: a name, a pydantic input model, a spec per provider, and `run`.

Tools validate their arguments first, then act; every failure is a `ToolResult` with
`is_error=True` worded for the model, never an exception out of `run`.
"""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field


class ToolResult(BaseModel):
    """The outcome of one tool call, as the model will read it."""

    content: str
    is_error: bool = False
    # "write" or "network" when the bash sandbox (not the command) made it fail: the caller
    # may offer to run it again outside the sandbox, with the user's approval.
    sandbox_blocked: str | None = None
    # Images beside the text (an MCP tool's screenshot, say): {"media_type", "data" (base64)}.
    # Providers that take images in tool results send them; the others say one was left out.
    images: list[dict[str, str]] = Field(default_factory=list)
    # What the call changed, for people (a unified diff with the file's line numbers); the
    # model reads `content` only.
    diff: str | None = None


@dataclass
class ToolContext:
    """What a tool may touch, and a cancel flag set on interrupt.

    `cwd` is the folder the user is in: relative paths start there and so does the shell.
    `root` is the work tree (the project root, default `cwd`) and `extra_dirs` the folders
    added with `--add-dir`: tools reach files inside any of them, and nothing else."""

    cwd: Path
    cancel: threading.Event = field(default_factory=threading.Event)
    # Per-session state a tool keeps between calls (e.g. the persistent bash shell),
    # keyed by tool name. Owned by the session; tools create their entry lazily.
    state: dict[str, Any] = field(default_factory=dict)
    root: Path | None = None
    extra_dirs: tuple[Path, ...] = ()


@runtime_checkable
class Tool(Protocol):
    """A callable capability. Implementations live in this package.

    A tool may also set `writes_work_tree = False` when its writes land outside the work tree
    (the memory tool): the runtime then takes no checkpoint before them.
    """

    name: str
    input_model: type[BaseModel]

    def description(self) -> str:
        """Text the model reads about the tool (used for JSON-schema providers)."""

    def anthropic_spec(self) -> dict[str, Any]:
        """The tool entry for the Messages API (built-in type where one exists)."""

    def openai_spec(self) -> dict[str, Any]:
        """The tool entry for Chat Completions: {"type": "function", "function": {...}}."""

    def is_read_only(self, args: dict[str, Any]) -> bool:
        """True when this call cannot change the work tree (no checkpoint, allowed in plan mode)."""

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        """Validate `args`, act, and return the result. Never raises for bad input."""


@functools.cache
def _schema_json(input_model: type[BaseModel]) -> str:
    return json.dumps(input_model.model_json_schema())


def json_schema(input_model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of an input model: computed once (pydantic takes milliseconds), then a
    fresh copy per call so callers may change it."""
    return json.loads(_schema_json(input_model))


def function_spec(name: str, description: str, input_model: type[BaseModel]) -> dict[str, Any]:
    """A Chat Completions function tool from a pydantic input model."""
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": json_schema(input_model),
        },
    }


def validation_message(tool: str, err: Exception) -> str:
    """A pydantic validation error, worded for the model."""
    from pydantic import ValidationError

    if isinstance(err, ValidationError):
        parts = []
        for e in err.errors():
            loc = ".".join(str(p) for p in e["loc"]) or "input"
            parts.append(f"{loc}: {e['msg']}")
        return f"Invalid input for {tool}: " + "; ".join(parts)
    return f"Invalid input for {tool}: {err}"
