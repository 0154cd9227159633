"""Settings, in layers as Claude Code has them: `GODWIT_HOME/settings.json` (the user's), the
project's `.godwit/settings.json` (shared), its `.godwit/settings.local.json` (personal,
git-ignored), a `--settings` file, then the other flags.

Later layers override earlier ones field by field; permission rule lists and `add_dirs` are
concatenated so a layer can add without restating the others. Claude Code's keys `hooks`, `env`
and `mcpServers` are read with Claude Code's meaning: hooks of every layer run (their lists are
concatenated per event), `env` and `mcpServers` are merged name by name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.context.settings import ContextSettings
from agent.errors import ConfigError
from agent.events import PermissionMode
from agent.providers.catalogue import DEFAULT_CLAUDE_MODEL
from tools.sandbox import DEFAULT_DENY_READ, SandboxConfig

# The newest Sonnet the installed anthropic SDK lists (agent.providers.aliases), resolved when
# the provider is built; the session records the resolved id.
DEFAULT_MODEL = f"anthropic:{DEFAULT_CLAUDE_MODEL}"


# Keys of a project's own settings that take effect only once the user approved them.
HELD_BACK = ("hooks", "env", "base_url")


class PermissionRules(BaseModel):
    """Rules are `TOOL` or `TOOL(PATTERN)`: for bash PATTERN is a command prefix
    (`bash(git status)`, `bash(npm run test:*)`), for file tools a path glob."""

    model_config = ConfigDict(extra="forbid")

    allow: list[str] = Field(default_factory=list, description="Calls allowed without asking.")
    deny: list[str] = Field(default_factory=list, description="Calls always refused.")
    ask: list[str] = Field(default_factory=list, description="Calls that always ask.")
    # Set by load_settings, not read from files: the allow rules that only the project's
    # .godwit/settings.json gave (a sandboxed command may have written that file), which
    # never let a command run outside the sandbox.
    project_only_allow: list[str] = Field(default_factory=list, exclude=True)


class ProviderOptions(BaseModel):
    """`provider_options`: checked when the settings are read, so a bad value is one message
    naming the key (not a traceback, nor five retries of a request that cannot be made)."""

    model_config = ConfigDict(extra="forbid")

    max_retries: int | None = Field(None, ge=0, le=100, description="Retries of a failed request.")
    timeout_s: float | None = Field(None, gt=0, description="Seconds before a request times out.")
    thinking_mode: Literal["enabled", "adaptive"] | None = Field(
        None, description="anthropic: how extended thinking is requested."
    )
    send_reasoning: bool | None = Field(
        None, description="openai: send reasoning_content back with earlier turns."
    )
    stream: bool | None = Field(None, description="openai: stream responses.")
    context_window: int | None = Field(None, ge=1, description="openai: the model's window.")
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] | None = Field(
        None, description="openai: which parameter carries the output limit."
    )
    device: str | None = Field(None, description="local: torch device.")
    thinking: bool | None = Field(None, description="local: think before answering.")
    max_new_tokens: int | None = Field(None, ge=1, description="local: output tokens at most.")

    def given(self) -> dict[str, Any]:
        """The options that were set, as keyword arguments for the provider."""
        return self.model_dump(exclude_none=True)


def _check_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL such as https://api.example.com")
    return value


class Settings(BaseModel):
    """Everything a user can configure. Every field can come from a settings file."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        DEFAULT_MODEL,
        description="Model spec: anthropic:ID, openai:ID, local:PATH, or an alias "
        "(sonnet, opus, haiku: the newest of that family).",
    )
    base_url: str | None = Field(None, description="API base URL (overrides *_BASE_URL).")
    provider_options: ProviderOptions = Field(
        default_factory=ProviderOptions,
        description="Passed to the provider: max_retries, timeout_s, context_window (openai), "
        "send_reasoning (openai: send reasoning_content back), thinking_mode (anthropic); for "
        "local: backend (auto|torch|triton), indexer (exact|fp8), max_cached_tokens, persist_kv, "
        "kv_cap_bytes (size cap of GODWIT_HOME/kv, oldest files out first; default 16 GiB).",
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
    context: ContextSettings = Field(
        default_factory=ContextSettings,
        description="Context editing and compaction (agent/context/settings.py).",
    )
    checkpoints: bool = Field(True, description="Snapshot the work tree before changes.")
    checkpoint_size_cap: int = Field(
        50 * 2**20, ge=1, description="Files larger than this (bytes) are not snapshotted."
    )
    project_held: dict[str, Any] = Field(
        default_factory=dict,
        description="Hooks and env from the project's own settings files, which take effect "
        "only once approved (agent/project_trust.py); set by load_settings, not by a file.",
    )
    sandbox: SandboxConfig = Field(
        default_factory=SandboxConfig, description="The bash sandbox (tools/sandbox.py)."
    )

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_url(value)

    hooks: dict[str, Any] = Field(
        default_factory=dict,
        description="Shell hooks, Claude Code's `hooks` key (agent/command_hooks/config.py).",
    )
    mcpServers: dict[str, Any] = Field(  # Claude Code's spelling of the key
        default_factory=dict, description="MCP servers by name (agent/mcp/config.py)."
    )
    enableAllProjectMcpServers: bool = Field(  # Claude Code's spelling
        False, description="Start the project's .mcp.json servers without asking."
    )

    @field_validator("hooks")
    @classmethod
    def _hooks_are_valid(cls, value: dict[str, Any]) -> dict[str, Any]:
        from agent.command_hooks.config import HooksConfig

        try:
            HooksConfig.parse(value)
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            raise ValueError(f"hooks: {exc}") from None
        return value


def read_layer(path: Path) -> dict[str, Any]:
    """One settings file as written ({} when it does not exist)."""
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
        elif key in ("context", "sandbox", "provider_options", "env", "mcpServers") and isinstance(
            value, dict
        ):
            out[key] = {**(out.get(key) or {}), **value}
        elif key == "add_dirs" and isinstance(value, list):
            out[key] = list(out.get(key) or []) + value
        elif key == "hooks" and isinstance(value, dict):
            hooks = dict(out.get("hooks") or {})
            for event, matchers in value.items():
                if not isinstance(matchers, list):
                    raise ConfigError(f"{source}: hooks.{event} must be a list of matchers")
                hooks[event] = list(hooks.get(event, [])) + matchers
            out[key] = hooks
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
    return read_layer(path)


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
    data = merge(data, read_layer(user), str(user))
    project_layer = read_layer(project)
    held: dict[str, Any] = {}
    for path, layer in ((project, project_layer), (local, read_layer(local))):
        # Both files live in the repository (a local one can be committed by mistake or by a
        # hostile repository), so neither may switch off approvals or loosen the sandbox: the
        # user can, in their own settings or on the command line.
        if layer.get("permission_mode") == "bypassPermissions":
            raise ConfigError(
                f"{path} sets permission_mode to bypassPermissions, which only "
                f"{user} or --permission-mode may do. Remove it from the project file."
            )
        _no_weaker_sandbox(layer.get("sandbox"), path, user)
        # Hooks and env would run code of the repository's choosing, and a base_url would send
        # the API key to a server of its choosing: held back until the user approves them
        # (agent/project_trust.py).
        code = {k: layer[k] for k in HELD_BACK if layer.get(k)}
        held = merge(held, code, str(path))
        data = merge(data, {k: v for k, v in layer.items() if k not in code}, str(path))
    data = merge(data, extra or {}, "--settings")
    data["project_held"] = held
    data = merge(data, overrides or {})
    if isinstance(data.get("permissions"), dict):
        data["permissions"].pop("project_only_allow", None)
        data["permissions"]["project_only_allow"] = _project_only(project_layer, data)
    try:
        # What is held back is checked now too, so a mistake in it is reported at once.
        Settings.model_validate(held)
        return Settings.model_validate(data)
    except ValidationError as exc:
        errs = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(
            f"Invalid settings ({', '.join(map(str, sources))} + options): {errs}"
        ) from exc


def _no_weaker_sandbox(layer: Any, project: Path, user: Path) -> None:
    """A repository must not loosen the sandbox by itself (it may tighten it)."""
    if not isinstance(layer, dict):
        return
    looser = ["enabled"] if layer.get("enabled") is False else []
    # Any network at all (everything, or a list of hosts) is looser than the default none.
    network = layer.get("network")
    if isinstance(network, str):
        network = network.strip().lower()
    if network not in (None, False, "none", []):
        looser.append("network")
    if layer.get("allow_write"):
        looser.append("allow_write")
    deny = layer.get("deny_read")
    if isinstance(deny, list) and not set(DEFAULT_DENY_READ) <= set(deny):
        looser.append("deny_read (it may add paths to the default list, not drop any)")
    if looser:
        keys = ", ".join("sandbox." + k for k in looser)
        raise ConfigError(
            f"{project} loosens the bash sandbox ({keys}), which only {user} or --sandbox "
            "may do. Remove it from the project file."
        )


def _project_only(project_layer: dict[str, Any], data: dict[str, Any]) -> list[str]:
    rules = (project_layer.get("permissions") or {}).get("allow") or []
    allow = list((data.get("permissions") or {}).get("allow") or [])
    for rule in rules:  # what remains after the project's rules: the user's and the flags'
        if rule in allow:
            allow.remove(rule)
    return [r for r in rules if r not in allow]
