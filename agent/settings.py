"""Settings: `GODWIT_HOME/settings.json`, then the project's `.godwit/settings.json`, then flags.

Later layers override earlier ones field by field; permission rule lists are concatenated so a
project can add rules without restating the user's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.context.settings import ContextSettings
from agent.errors import ConfigError
from agent.events import PermissionMode
from agent.providers.catalogue import DEFAULT_CLAUDE_MODEL

DEFAULT_MODEL = f"anthropic:{DEFAULT_CLAUDE_MODEL}"


class PermissionRules(BaseModel):
    """Rules are `TOOL` or `TOOL(PATTERN)`: for bash PATTERN is a command prefix
    (`bash(git status)`, `bash(npm run test:*)`), for file tools a path glob."""

    model_config = ConfigDict(extra="forbid")

    allow: list[str] = Field(default_factory=list, description="Calls allowed without asking.")
    deny: list[str] = Field(default_factory=list, description="Calls always refused.")
    ask: list[str] = Field(default_factory=list, description="Calls that always ask.")


class Settings(BaseModel):
    """Everything a user can configure. Every field can come from a settings file."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        DEFAULT_MODEL, description="Model spec: anthropic:ID, openai:ID, local:PATH."
    )
    base_url: str | None = Field(None, description="API base URL (overrides *_BASE_URL).")
    provider_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Passed to the provider: max_retries, timeout_s, context_window (openai), "
        "send_reasoning (openai: send reasoning_content back), thinking_mode (anthropic).",
    )
    permission_mode: PermissionMode = Field("default", description="How tool calls are approved.")
    permissions: PermissionRules = Field(default_factory=PermissionRules)
    max_turns: int | None = Field(None, ge=1, description="Model calls per prompt at most.")
    max_tokens: int = Field(16000, ge=1, description="Output tokens per model call at most.")
    thinking_budget: int | None = Field(
        None, ge=1024, description="Extended-thinking budget in tokens; unset turns it off."
    )
    system_prompt: str | None = Field(None, description="Extra text appended to the system prompt.")
    memory: bool = Field(True, description="Offer the memory tool.")
    memory_scope: Literal["project", "global"] = Field(
        "project", description="Memory folder per project, or one shared by all projects."
    )
    context: ContextSettings = Field(
        default_factory=ContextSettings,
        description="Context editing and compaction (agent/context/settings.py).",
    )
    checkpoints: bool = Field(True, description="Snapshot the work tree before changes.")
    checkpoint_size_cap: int = Field(
        50 * 2**20, ge=1, description="Files larger than this (bytes) are not snapshotted."
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"Cannot read settings file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"Settings file {path} must hold a JSON object")
    return data


def merge(base: dict[str, Any], layer: dict[str, Any], source: str = "options") -> dict[str, Any]:
    out = dict(base)
    for key, value in layer.items():
        if value is None:
            continue
        if key == "permissions" and isinstance(value, dict):
            rules = dict(out.get("permissions") or {})
            for kind, items in value.items():
                if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                    # A bare string would otherwise become one rule per character.
                    raise ConfigError(
                        f"{source}: permissions.{kind} must be a list of rules "
                        f'such as ["bash(git status)"], not {items!r}'
                    )
                rules[kind] = list(rules.get(kind, [])) + items
            out[key] = rules
        elif key == "context" and isinstance(value, dict):
            out[key] = {**(out.get("context") or {}), **value}
        else:
            out[key] = value
    return out


def load_settings(home: Path, cwd: Path, overrides: dict[str, Any] | None = None) -> Settings:
    """User settings, then project settings, then `overrides` (flags, SDK arguments)."""
    data: dict[str, Any] = {}
    user, project = home / "settings.json", Path(cwd) / ".godwit" / "settings.json"
    sources = [user, project]
    data = merge(data, _read(user), str(user))
    project_layer = _read(project)
    if project_layer.get("permission_mode") == "bypassPermissions":
        # A repository (perhaps a cloned one, perhaps edited by the agent) must not switch off
        # approvals by itself; the user can, in their own settings or on the command line.
        raise ConfigError(
            f"{project} sets permission_mode to bypassPermissions, which only "
            f"{user} or --permission-mode may do. Remove it from the project file."
        )
    data = merge(data, project_layer, str(project))
    data = merge(data, overrides or {})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        errs = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(
            f"Invalid settings ({', '.join(map(str, sources))} + options): {errs}"
        ) from exc
