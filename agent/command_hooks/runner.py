"""Running shell hooks with Claude Code's wire format.

Each matching command runs under bash in the project root with the event as one JSON object on
stdin (`session_id`, `transcript_path`, `cwd`, `permission_mode`, `hook_event_name` and the
event's own fields), in its own process group under Godwit's orphan guard. The commands of one
event run concurrently; identical commands run once. How a command answers:

- exit 0: go on. Stdout may be a JSON object (below); for UserPromptSubmit and SessionStart
  plain stdout is context added for the model.
- exit 2: block. Stderr is the reason: fed to the model for PreToolUse (the call is refused),
  PostToolUse and Stop (the model goes on with it); shown to the user for UserPromptSubmit (the
  prompt is dropped); shown to the user elsewhere.
- any other exit, a crash, or running past `timeout` (the group is killed): a non-blocking
  error, reported to the user; the session goes on.

JSON on stdout: `continue: false` (+ `stopReason`) stops the agent; `decision: "block"` +
`reason`; `systemMessage` (shown to the user); `hookSpecificOutput` with `permissionDecision`
(allow / deny / ask), `permissionDecisionReason`, `updatedInput` and `additionalContext`. The
older PreToolUse `decision: "approve"` reads as allow.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agent.command_hooks.config import CommandHook, HooksConfig
from agent.process_guard import guarded

Permission = Literal["allow", "deny", "ask"]
_MAX_OUTPUT = 1_000_000  # bytes of stdout/stderr kept per command
_KILL_GRACE_S = 1.0


@dataclass
class HookResult:
    """What the commands of one event decided, merged (a block or deny from any one wins)."""

    blocked: bool = False
    reason: str = ""  # why it was blocked, for the model (or the user, for prompts)
    permission: Permission | None = None
    permission_reason: str = ""
    updated_input: dict[str, Any] | None = None
    context: list[str] = field(default_factory=list)  # additionalContext for the model
    stop: bool = False  # continue: false
    stop_reason: str = ""
    messages: list[str] = field(default_factory=list)  # systemMessage, shown to the user
    errors: list[str] = field(default_factory=list)  # failed or timed-out hooks, for the user
    ran: int = 0


@dataclass
class _Run:
    command: CommandHook
    code: int | None  # None: killed on its time limit
    stdout: str
    stderr: str


class CommandHooks:
    """The shell hooks of a session's settings; `run` raises nothing a hook can cause."""

    def __init__(
        self,
        config: HooksConfig | Mapping[str, Any] | None,
        *,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        session_id: str = "",
        transcript_path: str = "",
    ) -> None:
        self.config = (
            config if isinstance(config, HooksConfig) else HooksConfig.parse(dict(config or {}))
        )
        self.cwd = Path(cwd)
        self.env = dict(env or {})
        self.session_id = session_id
        self.transcript_path = transcript_path
        self.permission_mode = "default"

    def has(self, event: str) -> bool:
        """Whether any command is configured for `event` (so callers can skip building input)."""
        return any(m.hooks for m in self.config.for_event(event))

    async def run(
        self, event: str, fields: dict[str, Any], *, match: tuple[str, ...] = ()
    ) -> HookResult:
        """Run the commands of `event` whose matcher matches one of `match` (tool names, or
        the source / trigger); `fields` are the event's own input fields."""
        commands: list[CommandHook] = []
        seen: set[str] = set()
        for matcher in self.config.for_event(event):
            if match and not matcher.matches(*match):
                continue
            for hook in matcher.hooks:
                if hook.command not in seen:
                    seen.add(hook.command)
                    commands.append(hook)
        result = HookResult()
        if not commands:
            return result
        payload = {
            "session_id": self.session_id,
            "transcript_path": self.transcript_path,
            "cwd": str(self.cwd),
            "permission_mode": self.permission_mode,
            "hook_event_name": event,
            **fields,
        }
        data = (json.dumps(payload, ensure_ascii=False, default=str) + "\n").encode()
        runs = await asyncio.gather(*(self._one(c, data) for c in commands))
        for run in runs:
            _merge(event, run, result)
        result.ran = len(runs)
        return result

    async def _one(self, hook: CommandHook, data: bytes) -> _Run:
        shell = shutil.which("bash") or "/bin/sh"
        command, args = guarded(shell, ["-c", hook.command])
        env = {
            **os.environ,
            **self.env,
            "CLAUDE_PROJECT_DIR": str(self.cwd),
            "GODWIT_PROJECT_DIR": str(self.cwd),
        }
        try:
            proc = await asyncio.create_subprocess_exec(
                command,
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=str(self.cwd),
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            return _Run(hook, 1, "", f"could not start: {exc}")
        try:
            out, err = await asyncio.wait_for(proc.communicate(data), hook.timeout)
        except TimeoutError:
            await _kill(proc)
            return _Run(hook, None, "", "")
        except asyncio.CancelledError:
            await _kill(proc)
            raise
        except (BrokenPipeError, ConnectionResetError):
            # The hook exited without reading its input: that is allowed.
            out, err = b"", b""
            await proc.wait()
        return _Run(
            hook,
            proc.returncode,
            out[:_MAX_OUTPUT].decode("utf-8", "replace"),
            err[:_MAX_OUTPUT].decode("utf-8", "replace"),
        )


async def _kill(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the hook's group, SIGKILL it after a grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            await asyncio.wait_for(proc.wait(), _KILL_GRACE_S)
            return
        except TimeoutError:
            continue


def _merge(event: str, run: _Run, result: HookResult) -> None:
    name = run.command.command
    if run.code is None:
        result.errors.append(
            f"{event} hook `{name}` timed out after {run.command.timeout:g} s and was stopped"
        )
        return
    if run.code == 2:
        result.blocked = True
        reason = run.stderr.strip() or f"blocked by the {event} hook `{name}`"
        result.reason = "\n".join(filter(None, [result.reason, reason]))
        if event == "PreToolUse":
            result.permission = "deny"
        return
    if run.code != 0:
        detail = run.stderr.strip().splitlines()[-1:] or [""]
        result.errors.append(
            f"{event} hook `{name}` failed (exit {run.code})"
            + (f": {detail[0]}" if detail[0] else "")
        )
        return
    output = _json_object(run.stdout)
    if output is None:
        if event in ("UserPromptSubmit", "SessionStart") and run.stdout.strip():
            result.context.append(run.stdout.strip())
        return
    apply_json(event, output, result)


def _json_object(text: str) -> dict[str, Any] | None:
    text = text.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


_RANK = {None: 0, "allow": 1, "ask": 2, "deny": 3}


def apply_json(event: str, out: dict[str, Any], result: HookResult) -> None:
    """Read one hook JSON answer (a shell hook's stdout, an SDK hook callback's reply) into
    `result`."""
    if out.get("continue") is False:
        result.stop = True
        result.stop_reason = str(out.get("stopReason") or "")
    if isinstance(out.get("systemMessage"), str):
        result.messages.append(out["systemMessage"])
    decision, reason = out.get("decision"), out.get("reason")
    specific = out.get("hookSpecificOutput")
    specific = specific if isinstance(specific, dict) else {}
    if event == "PreToolUse":
        permission = specific.get("permissionDecision")
        why = specific.get("permissionDecisionReason") or reason or ""
        if permission is None and decision in ("approve", "block"):  # the older spelling
            permission = "allow" if decision == "approve" else "deny"
        if permission in ("allow", "deny", "ask") and _RANK[permission] >= _RANK[result.permission]:
            result.permission = permission
            result.permission_reason = str(why)
        if permission == "deny":
            result.blocked = True
            result.reason = "\n".join(filter(None, [result.reason, str(why)]))
        if isinstance(specific.get("updatedInput"), dict):
            result.updated_input = specific["updatedInput"]
    elif decision == "block":
        result.blocked = True
        result.reason = "\n".join(filter(None, [result.reason, str(reason or "")]))
    context = specific.get("additionalContext")
    if isinstance(context, str) and context.strip():
        result.context.append(context.strip())


def merge(results: list[HookResult]) -> HookResult:
    """Several hook sources' results as one (a block or deny from any one wins)."""
    out = HookResult()
    for r in results:
        out.blocked = out.blocked or r.blocked
        out.reason = "\n".join(filter(None, [out.reason, r.reason]))
        if _RANK[r.permission] > _RANK[out.permission]:
            out.permission, out.permission_reason = r.permission, r.permission_reason
        out.updated_input = r.updated_input if r.updated_input is not None else out.updated_input
        out.context += r.context
        out.stop = out.stop or r.stop
        out.stop_reason = out.stop_reason or r.stop_reason
        out.messages += r.messages
        out.errors += r.errors
        out.ran += r.ran
    return out
