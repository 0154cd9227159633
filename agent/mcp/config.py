"""Which MCP servers a session uses, read as Claude Code reads them.

Sources, later ones replacing a server of the same name:
1. `mcpServers` in the settings files (user, then project),
2. `.mcp.json` at the project root (used only once the user approves each server: see approval),
3. every `--mcp-config` argument (a file, or a JSON string as the Claude Agent SDK passes it).
`--strict-mcp-config` keeps only the third.

A server entry is one of
    {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}}      (stdio; "type": "stdio")
    {"type": "http", "url": "https://host/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}}
    {"type": "sse", "url": "https://host/sse", "headers": {...}}
`${VAR}` and `${VAR:-default}` are expanded in command, args, env, url and headers (not `$VAR`:
Claude Code leaves that alone too). A `${VAR}` that is unset and has no default makes that one
server fail with a message naming the variable; the other servers start.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from agent.errors import ConfigError

MCP_JSON = ".mcp.json"
# Names become part of tool names (`mcp__NAME__tool`), which the APIs limit to [A-Za-z0-9_-].
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

Source = Literal["user", "project-settings", "project", "flag"]


class _Server(BaseModel):
    model_config = ConfigDict(extra="ignore")  # Claude Code's files carry keys we do not use


class StdioServer(_Server):
    """A server Godwit starts as a child process and talks to over stdin/stdout."""

    type: Literal["stdio"] = Field("stdio", description="Transport: a child process.")
    command: str = Field(min_length=1, description="The executable (looked up on PATH).")
    args: list[str] = Field(default_factory=list, description="Its arguments.")
    env: dict[str, str] = Field(
        default_factory=dict, description="Variables added to Godwit's environment for it."
    )
    cwd: str | None = Field(None, description="Its working folder (default: the project root).")


class HttpServer(_Server):
    """A server reached over MCP's streamable HTTP transport."""

    type: Literal["http", "streamable-http", "streamableHttp"] = Field(
        "http", description="Transport: streamable HTTP."
    )
    url: str = Field(min_length=1, description="The endpoint, e.g. https://host/mcp.")
    headers: dict[str, str] = Field(default_factory=dict, description="Sent with every request.")


class SseServer(_Server):
    """A server reached over the older HTTP + server-sent events transport."""

    type: Literal["sse"] = Field(description="Transport: HTTP with server-sent events.")
    url: str = Field(min_length=1, description="The SSE endpoint.")
    headers: dict[str, str] = Field(default_factory=dict, description="Sent with every request.")


class SdkServer(_Server):
    """A server inside the Claude Agent SDK program that runs Godwit (see bridge.py)."""

    type: Literal["sdk"] = Field(description="Served by the SDK over the control protocol.")
    name: str = Field("", description="The SDK's name for it.")


ServerConfig = Annotated[
    StdioServer | HttpServer | SseServer | SdkServer, Field(discriminator="type")
]
_SERVER = TypeAdapter(ServerConfig)


@dataclass
class ServerSpec:
    """One configured server: its name, where it was configured, and its (expanded) config,
    or why it cannot be used (`error`), which is reported like a failure to start."""

    name: str
    source: Source
    config: StdioServer | HttpServer | SseServer | SdkServer | None
    error: str | None = None
    raw: Any = None  # the entry as written (before expansion): what approval fingerprints


def expand(text: str, env: Mapping[str, str], missing: list[str]) -> str:
    """`${VAR}` and `${VAR:-default}` replaced from `env`; unset names without a default are
    left as written and appended to `missing`."""

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        value = env.get(name)
        if value is not None and (value != "" or default is None):
            return value
        if default is not None:
            return default
        missing.append(name)
        return m.group(0)

    return _VAR.sub(sub, text)


def _expand_entry(entry: dict[str, Any], env: Mapping[str, str], missing: list[str]) -> dict:
    out = dict(entry)
    for key in ("command", "url"):
        if isinstance(out.get(key), str):
            out[key] = expand(out[key], env, missing)
    if isinstance(out.get("args"), list):
        out["args"] = [expand(a, env, missing) if isinstance(a, str) else a for a in out["args"]]
    for key in ("env", "headers"):
        if isinstance(out.get(key), dict):
            out[key] = {
                k: expand(v, env, missing) if isinstance(v, str) else v for k, v in out[key].items()
            }
    return out


def parse_server(
    name: str, entry: Any, source: Source, env: Mapping[str, str] | None = None
) -> ServerSpec:
    """One `mcpServers` entry, validated and expanded. Never raises: a bad entry becomes a
    spec with `error` set, so one typo does not take the other servers down."""
    env = os.environ if env is None else env
    where = f"MCP server {name!r} ({source})"
    if not _NAME.match(name):
        return ServerSpec(
            name,
            source,
            None,
            f"{where}: a name may use letters, digits, _ and - "
            "only (it becomes part of the tool names)",
            entry,
        )
    if not isinstance(entry, dict):
        return ServerSpec(name, source, None, f"{where}: expected an object", entry)
    data = dict(entry)
    if "type" not in data:
        data["type"] = (
            "sse"
            if data.get("url")
            and not data.get("command")
            and str(data["url"]).rstrip("/").endswith("/sse")
            else ("http" if data.get("url") and not data.get("command") else "stdio")
        )
    missing: list[str] = []
    data = _expand_entry(data, env, missing)
    if missing:
        names = ", ".join(sorted(set(missing)))
        return ServerSpec(
            name,
            source,
            None,
            f"{where}: environment variable(s) {names} not "
            "set and no default given (write ${VAR:-default} for one)",
            entry,
        )
    try:
        config = _SERVER.validate_python(data)
    except ValidationError as exc:
        errs = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors()
        )
        return ServerSpec(name, source, None, f"{where}: {errs}", entry)
    return ServerSpec(name, source, config, None, entry)


def servers_of(
    document: Any, source: Source, where: str, env: Mapping[str, str] | None = None
) -> list[ServerSpec]:
    """The servers of one `{"mcpServers": {...}}` document."""
    if not isinstance(document, dict):
        raise ConfigError(f"{where} must hold a JSON object with an mcpServers object")
    servers = document.get("mcpServers", {})
    if not isinstance(servers, dict):
        raise ConfigError(f"{where}: mcpServers must be an object of name: server")
    return [parse_server(str(n), e, source, env) for n, e in servers.items()]


def read_mcp_json(
    path: Path, source: Source, env: Mapping[str, str] | None = None
) -> list[ServerSpec]:
    """Servers of an `.mcp.json`-shaped file; none when it does not exist."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"Cannot read MCP configuration {path}: {exc}") from exc
    return servers_of(document, source, str(path), env)


def read_flag(value: str, cwd: Path, env: Mapping[str, str] | None = None) -> list[ServerSpec]:
    """One `--mcp-config` value: a JSON object (as the Claude Agent SDK passes it) or a file."""
    text = value.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--mcp-config: not valid JSON ({exc})") from exc
        return servers_of(document, "flag", "--mcp-config", env)
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = cwd / path
    if not path.is_file():
        raise ConfigError(f"--mcp-config: no such file {path}")
    return read_mcp_json(path, "flag", env)


def collect(
    project_root: Path,
    *,
    user_settings: Mapping[str, Any] | None = None,
    project_settings: Mapping[str, Any] | None = None,
    flags: list[str] = (),
    strict: bool = False,
    env: Mapping[str, str] | None = None,
) -> list[ServerSpec]:
    """Every configured server, in start order, one per name (the last source wins)."""
    found: dict[str, ServerSpec] = {}
    if not strict:
        layers: list[list[ServerSpec]] = []
        if user_settings and user_settings.get("mcpServers"):
            layers.append(
                servers_of(
                    {"mcpServers": user_settings["mcpServers"]}, "user", "user settings", env
                )
            )
        if project_settings and project_settings.get("mcpServers"):
            layers.append(
                servers_of(
                    {"mcpServers": project_settings["mcpServers"]},
                    "project-settings",
                    "project settings",
                    env,
                )
            )
        layers.append(read_mcp_json(Path(project_root) / MCP_JSON, "project", env))
        for layer in layers:
            found.update((s.name, s) for s in layer)
    for value in flags:
        found.update((s.name, s) for s in read_flag(value, Path(project_root), env))
    return list(found.values())
