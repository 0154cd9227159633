"""Settings, in layers as Claude Code has them: `GODWIT_HOME/settings.json` (the user's), the
project's `.godwit/settings.json` (shared), its `.godwit/settings.local.json` (personal,
git-ignored), a `--settings` file, then the other flags.

Later layers override earlier ones field by field; permission rule lists and `add_dirs` are
concatenated and `env` merged by name, so a layer can add without restating the others.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.errors import ConfigError
from agent.events import PermissionMode

# The newest Sonnet the installed anthropic SDK lists (agent.providers.aliases), resolved when
# the provider is built; the session records the resolved id.
DEFAULT_MODEL = "anthropic:sonnet"


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
        DEFAULT_MODEL,
        description="Model spec: anthropic:ID, openai:ID, local:PATH, or an alias "
        "(sonnet, opus, haiku: the newest of that family).",
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
    append_system_prompt: str | None = Field(
        None, description="Appended after everything else (--append-system-prompt)."
    )
    replace_system_prompt: str | None = Field(
        None,
        description="Replaces Godwit's own instructions (--system-prompt); the project's "
        "instruction files still follow.",
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Environment variables for the tools (the shell)."
    )
    add_dirs: list[str] = Field(
        default_factory=list,
        description="More folders the tools may reach, with the same protections (--add-dir).",
    )
    memory: bool = Field(True, description="Offer the memory tool.")
    memory_scope: Literal["project", "global"] = Field(
        "project", description="Memory folder per project, or one shared by all projects."
    )
    context: dict[str, Any] = Field(
        default_factory=dict, description="Context editing and compaction (agent.context.policy)."
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
        elif key in ("context", "env") and isinstance(value, dict):
            out[key] = {**(out.get(key) or {}), **value}
        elif key == "add_dirs" and isinstance(value, list):
            out[key] = list(out.get(key) or []) + value
        else:
            out[key] = value
    return out


def read_settings_arg(value: str) -> dict[str, Any]:
    """A `--settings` value: a JSON object, or the path of a file holding one."""
    if value.lstrip().startswith("{"):
        try:
            data = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--settings: not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError("--settings must be a JSON object or a file holding one")
        return data
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(f"--settings: no settings file {path}")
    return _read(path)


def load_settings(
    home: Path,
    cwd: Path,
    overrides: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Settings:
    """User settings, then the project's (`cwd` is the project root) shared and local ones,
    then `extra` (a --settings file), then `overrides` (flags, SDK arguments)."""
    data: dict[str, Any] = {}
    user = home / "settings.json"
    project = Path(cwd) / ".godwit" / "settings.json"
    local = Path(cwd) / ".godwit" / "settings.local.json"
    sources = [user, project, local]
    data = merge(data, _read(user), str(user))
    for path in (project, local):
        layer = _read(path)
        if layer.get("permission_mode") == "bypassPermissions":
            # A repository (perhaps a cloned one, perhaps edited by the agent) must not switch
            # off approvals by itself; the user can, in their own settings or on the command line.
            raise ConfigError(
                f"{path} sets permission_mode to bypassPermissions, which only "
                f"{user} or --permission-mode may do. Remove it from the project file."
            )
        data = merge(data, layer, str(path))
    data = merge(data, extra or {}, "--settings")
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
