"""`bash`: one persistent shell per session (Anthropic's bash_20250124).

How a command runs (the shell itself is in tools/bash_shell.py): the session's shell is
`bash --noprofile --norc` in its own process group (start_new_session), inside the bubblewrap
sandbox when one is configured and works here (tools/sandbox.py). Each command is written to a
file and sourced in that shell with its own output FIFO and stdin from /dev/null, followed by an
end marker carrying `$?` on a descriptor the command cannot see. So `cd` and `export` persist
between calls, commands can never read the shell's own input (`cat` returns at once), the exit
status is exact, a background job's later output never lands in another command's result, and
`exec > /dev/null` silences only the command that ran it.

Results:
- a command that ran: its output (capped: head and tail kept, the cut stated), and when the
  exit status is not 0, a last line `[exit code N]`. is_error stays False for a non-zero exit:
  the command ran and the model reads the status (a failing `grep` or test run is information,
  not a tool failure). When the sandbox is on and the output shows it stopped the command (a
  read-only file system, no network), a note says so and `ToolResult.sandbox_blocked` names
  it, so the runtime can offer `run_outside_sandbox` with the user's approval.
- timed out (default 120 s, at most 600) or interrupted (ctx.cancel, polled every 50 ms): the
  whole process group is killed (SIGTERM, then SIGKILL after 1 s), including anything it put in
  the background; the partial output is returned with is_error=True and a note, and the next
  call starts a fresh shell (cwd and environment reset) — the result says so.
- `restart: true` kills the shell and starts a new one (then runs `command` if one is given).

The shell's environment is os.environ plus GIT_PAGER=cat, PAGER=cat, TERM=dumb. At session end
the runtime calls `tools.close_all(ctx)` (or `BashTool.close(ctx)`), which kills the shell.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from ._common import BaseTool, ToolError, ToolInput, ok, work_root
from .base import ToolContext, ToolResult
from .bash_shell import Capture, Shell, decode_q, group_alive, sweep_stale_dirs
from .readonly_shell import is_read_only_command
from .sandbox import SandboxConfig, blocked_by_sandbox, bwrap_argv, sandbox_status
from .sandbox_proxy import NetworkProxy

__all__ = ["BashInput", "BashTool", "SandboxConfig", "group_alive", "sweep_stale_dirs"]

log = logging.getLogger(__name__)

STATE_KEY = "bash"
CLOSERS_KEY = "_closers"
DEFAULT_TIMEOUT_S = 120
MAX_TIMEOUT_S = 600
DEFAULT_MAX_OUTPUT_CHARS = 30_000
POLL_S = 0.05

_START_LOCK = threading.Lock()  # two calls of one session must not both start a shell
_BLOCKED_NOTES = {
    "write": "writing outside the work tree (and into .git/ or .godwit/) is not allowed there",
    "network": "the network is off there (or reached only through its proxy)",
}


class BashInput(ToolInput):
    command: str | None = Field(None, description="The bash command to run")
    restart: bool = Field(
        False, description="Kill the shell and start a new one (cwd and environment reset)"
    )
    timeout: int | None = Field(
        None,
        ge=1,
        le=MAX_TIMEOUT_S,
        description=f"Seconds before the command is killed (default {DEFAULT_TIMEOUT_S}, at most {MAX_TIMEOUT_S})",
    )


def _cut_after_newline(s: str) -> str:
    """`s` up to its last newline, when that keeps most of it (cuts fall between lines)."""
    j = s.rfind("\n")
    return s[: j + 1] if j >= len(s) // 2 else s


def _cut_before_newline(s: str) -> str:
    j = s.find("\n")
    return s[j + 1 :] if 0 <= j < len(s) // 2 else s


def _join(output: str, note: str) -> str:
    """The note on its own last line."""
    if not output:
        return note
    return output + ("" if output.endswith("\n") else "\n") + note


class BashTool(BaseTool):
    name: ClassVar[str] = "bash"
    input_model = BashInput
    DESCRIPTION = (
        "Run a command in a persistent bash shell (the working directory and exported variables "
        "carry over between calls; it starts in the work tree root). stdout and stderr are merged. "
        "Commands get no standard input (interactive programs see end-of-file): pass flags such as "
        "-y or --no-pager, and avoid editors and pagers. A non-zero exit status is reported on a "
        "last line `[exit code N]`. Long output is cut in the middle. A command that runs past its "
        f"timeout (default {DEFAULT_TIMEOUT_S} s, at most {MAX_TIMEOUT_S}) is killed with everything it "
        "started, and the shell restarts. Set restart to true to get a fresh shell."
    )

    def __init__(
        self,
        *,
        default_timeout: int = DEFAULT_TIMEOUT_S,
        max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
        extra_env: dict[str, str] | None = None,
        sandbox: SandboxConfig | None = None,
        extra_dirs: list[Path] | None = None,
    ) -> None:
        """`sandbox`: run commands in the bubblewrap sandbox (tools/sandbox.py) when it is
        enabled and works here; None or `enabled=False`: no sandbox. `extra_dirs`: more folders
        the sandboxed commands may write (`--add-dir`)."""
        self.default_timeout = min(default_timeout, MAX_TIMEOUT_S)
        self.max_output_chars = max_output_chars
        self.extra_env = dict(extra_env or {})
        self.sandbox = sandbox
        self.extra_dirs = [Path(d) for d in (extra_dirs or [])]

    @property
    def sandboxed(self) -> bool:
        """Whether commands run in the sandbox (enabled in the config, and it works here)."""
        return bool(self.sandbox and self.sandbox.enabled and sandbox_status().available)

    def sandbox_unavailable_reason(self) -> str | None:
        """Why an enabled sandbox is not used here (say it once to the user), else None."""
        if self.sandbox is None or not self.sandbox.enabled:
            return None
        status = sandbox_status()
        return None if status.available else status.reason

    def anthropic_spec(self) -> dict[str, Any]:
        return {"type": "bash_20250124", "name": self.name}

    def is_read_only(self, args: dict[str, Any]) -> bool:
        """A lone command from the strict read-only list (tools/readonly_shell.py)."""
        return (
            isinstance(args, dict)
            and not args.get("restart")
            and is_read_only_command(args.get("command"))
        )

    # -- shell lifecycle -----------------------------------------------------------------------

    def _env(self, sandboxed: bool) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"GIT_PAGER": "cat", "PAGER": "cat", "TERM": "dumb"})
        if sandboxed:
            env["TMPDIR"] = "/tmp"  # the sandbox's private /tmp; the host's may be read-only
        env.update(self.extra_env)
        return env

    def _start(self, cwd: str, sandboxed: bool, root: Path | None = None) -> Shell:
        """A shell in `cwd`; sandboxed, its writable world is `root` (the work tree, of which
        `cwd` may be a subfolder) and the extra folders."""
        if not sandboxed:
            return Shell(cwd, self._env(False))
        assert self.sandbox is not None
        mounts: list = []
        proxies: list[NetworkProxy] = []
        hosts = self.sandbox.allowed_hosts

        def make_prefix(tmpdir: str) -> tuple[list[str], tuple[int, ...]]:
            m = bwrap_argv(
                self.sandbox,
                root or Path(cwd),
                extra_dirs=self.extra_dirs,
                read_only_dirs=[Path(tmpdir)],
                start_in=Path(cwd),
            )
            mounts.append(m)
            if hosts is None:
                return m.argv, m.pass_fds
            # A host list: the shell starts behind the bridge to a proxy of its own.
            proxy = NetworkProxy(hosts)
            proxies.append(proxy)
            proxy.start()
            fd = proxy.sandbox_fd()
            return [*m.argv, *proxy.command(fd)], (*m.pass_fds, fd)

        def on_close() -> None:
            for m in mounts:
                m.cleanup()
            for p in proxies:
                p.stop()

        shell = Shell(cwd, self._env(True), make_prefix=make_prefix, on_close=on_close)
        shell.proxy = proxies[0] if proxies else None
        return shell

    def _shell(self, ctx: ToolContext) -> tuple[Shell, bool]:
        """The session's shell, started if needed; the flag says a new one was started."""
        with _START_LOCK:
            return self._shell_locked(ctx)

    def _shell_locked(self, ctx: ToolContext) -> tuple[Shell, bool]:
        shell = ctx.state.get(STATE_KEY)
        if isinstance(shell, Shell) and shell.alive():
            return shell, False
        if isinstance(shell, Shell):
            shell.close()
        reason = self.sandbox_unavailable_reason()
        if reason:
            log.warning("bash runs without a sandbox: %s", reason)
        try:
            shell = self._start(str(ctx.cwd), self.sandboxed, work_root(ctx))
        except OSError as e:
            raise ToolError(f"Could not start bash: {e}") from None
        ctx.state[STATE_KEY] = shell
        ctx.state.setdefault(CLOSERS_KEY, {})[STATE_KEY] = lambda: BashTool.close(ctx)
        return shell, True

    @staticmethod
    def close(ctx: ToolContext) -> None:
        """Kill the session's shell (and everything it started). Safe to call twice."""
        shell = ctx.state.pop(STATE_KEY, None)
        if isinstance(shell, Shell):
            shell.close()
        closers = ctx.state.get(CLOSERS_KEY)
        if isinstance(closers, dict):
            closers.pop(STATE_KEY, None)

    # -- running -------------------------------------------------------------------------------

    def _run(self, a: BashInput, ctx: ToolContext) -> ToolResult:
        prefix = ""
        if a.restart:
            BashTool.close(ctx)
            self._shell(ctx)
            prefix = "The bash shell has been restarted (working directory and environment reset)."
            if a.command is None or not a.command.strip():
                return ok(prefix)
            prefix += "\n"
        if a.command is None:
            raise ToolError("Parameter command is required (or set restart to true).")
        if not a.command.strip():
            raise ToolError("command is empty; give a bash command to run.")
        if ctx.cancel.is_set():
            return ToolResult(
                content="Interrupted before the command started; it was not run.", is_error=True
            )
        timeout = a.timeout or self.default_timeout
        shell, _ = self._shell(ctx)
        proxy = shell.proxy
        with shell.run_lock:
            mark = proxy.refusal_count() if proxy else 0
            result = self._execute(shell, a.command, timeout, ctx)
            refused = proxy.refused_since(mark) if proxy else []
        if self.sandboxed:
            result = self._note_blocked(result, refused)
        if prefix:
            result = result.model_copy(update={"content": prefix + result.content})
        return result

    @staticmethod
    def _note_blocked(result: ToolResult, refused: list[str]) -> ToolResult:
        """Say so when the sandbox (not the command) stopped it: the proxy refused a host, or
        the output shows a write outside or a missing network, and the command failed."""
        failed = result.content.endswith("]") and "[exit code" in result.content
        kind = blocked_by_sandbox(result.content) if failed else None
        if refused:
            hosts = ", ".join(refused[:10]) + (", ..." if len(refused) > 10 else "")
            note = (
                f"[The sandbox's proxy refused {hosts}: not in the sandbox.network setting. "
                "Only the user can allow more hosts (in their settings); if the command must "
                "run outside the sandbox, say so: the user will be asked.]"
            )
            kind = "network" if failed else None
        elif kind:
            note = (
                f"[The sandbox may have stopped this: {_BLOCKED_NOTES[kind]}. If the "
                "command must run outside the sandbox, say so: the user will be asked.]"
            )
        else:
            return result
        return ToolResult(
            content=_join(result.content, note), is_error=result.is_error, sandbox_blocked=kind
        )

    def run_outside_sandbox(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        """Run one command outside the sandbox, in a shell of its own started where the
        session's shell last was (the caller has asked the user: every time)."""
        try:
            a = BashInput.model_validate(args)
        except ValueError as e:
            return ToolResult(content=f"Invalid input for bash: {e}", is_error=True)
        if not a.command or not a.command.strip():
            return ToolResult(
                content="command is empty; give a bash command to run.", is_error=True
            )
        current = ctx.state.get(STATE_KEY)
        cwd = current.last_cwd if isinstance(current, Shell) else str(ctx.cwd)
        if not os.path.isdir(cwd):
            cwd = str(ctx.cwd)
        try:
            shell = self._start(cwd, False)
        except OSError as e:
            return ToolResult(content=f"Could not start bash: {e}", is_error=True)
        try:
            with shell.run_lock:
                return self._execute(
                    shell, a.command, a.timeout or self.default_timeout, ctx, own=True
                )
        finally:
            shell.close()

    def _execute(
        self, shell: Shell, command: str, timeout: float, ctx: ToolContext, *, own: bool = False
    ) -> ToolResult:
        sentinel = f"__godwit_done_{uuid.uuid4().hex}__"
        with open(shell.cmd_file, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(command)
            if not command.endswith("\n"):
                f.write("\n")
        try:
            fifo = shell.new_output()
        except OSError as e:
            raise ToolError(f"Could not prepare the command's output: {e}") from None
        wrapper = (
            f"{{ . {shell.cmd_file} ; }} < /dev/null > {fifo} 2>&1 9>&-\n"
            f"printf '\\n%s %s %q\\n' '{sentinel}' \"$?\" \"$PWD\" >&9\n"
        )
        pattern = re.compile(b"\n" + sentinel.encode() + rb" (\d+) ([^\n]*)\n")
        try:
            assert shell.proc.stdin is not None
            shell.proc.stdin.write(wrapper.encode())
            shell.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            shell.close()
            raise ToolError(
                "The shell had exited; a new one will start on the next call. Please run the command again."
            ) from None

        deadline = time.monotonic() + timeout
        outcome = "running"
        exit_code: int | None = None
        with shell.cond:
            while True:
                m = pattern.search(shell.control)
                if m:
                    exit_code = int(m.group(1))
                    where = decode_q(m.group(2).decode("utf-8", "surrogateescape"))
                    if where:
                        shell.last_cwd = where
                    outcome = "done"
                    shell.drain_current()
                    break
                if shell.eof or shell.proc.poll() is not None:
                    outcome = "exited"
                    break
                if ctx.cancel.is_set():
                    outcome = "interrupted"
                    break
                if time.monotonic() >= deadline:
                    outcome = "timeout"
                    break
                shell.cond.wait(POLL_S)

        if outcome != "done":
            # The whole group: the command, its children, background jobs, the shell.
            shell.kill()
        with shell.cond:
            cap = shell.capture
            data = bytes(cap.buf)
        output = self._format(data, cap, shell.cmd_file)

        if outcome == "done":
            assert exit_code is not None
            if exit_code != 0:
                output = _join(output, f"[exit code {exit_code}]")
            return ok(output if output else "(no output)")
        restart_note = "The shell was killed; the next command starts a new shell (working directory and environment reset)."
        if not own:
            BashTool.close(ctx)
        if outcome == "exited":
            rc = shell.proc.returncode
            note = f"[The shell exited (exit code {rc}); the next command starts a new shell (working directory and environment reset).]"
            return ok(_join(output, note))
        if outcome == "timeout":
            note = f"[Command timed out after {timeout:g} s; it and everything it started were killed. {restart_note}]"
        else:
            note = f"[Command interrupted by the user; it and everything it started were killed. {restart_note}]"
        return ToolResult(content=_join(output, note), is_error=True)

    def _format(self, data: bytes, cap: Capture, cmd_file: str) -> str:
        """Decode, name errors `bash:` instead of the command file, cap at max_output_chars."""
        limit = self.max_output_chars
        if cap.cut_at is not None and cap.cut_at <= len(data):
            head_b, tail_b = data[: cap.cut_at], data[cap.cut_at :]
        else:
            head_b, tail_b = data, b""
        dropped_chars, dropped_lines = (cap.dropped_chars, cap.dropped_lines) if tail_b else (0, 0)
        marker = cmd_file.encode() + b": "
        head = head_b.replace(marker, b"bash: ").decode("utf-8", "replace")
        tail = tail_b.replace(marker, b"bash: ").decode("utf-8", "replace")
        if not dropped_chars and len(head) + len(tail) <= limit:
            return head + tail
        keep_head = limit * 2 // 5
        keep_tail = limit - keep_head
        if not tail:  # one piece: cut its middle
            tail = head[keep_head:]
            head = head[:keep_head]
        first = _cut_after_newline(head[:keep_head])
        last = _cut_before_newline(tail[-keep_tail:] if len(tail) > keep_tail else tail)
        middle = head[len(first) :] + tail[: len(tail) - len(last)]
        dropped_chars += len(middle)
        dropped_lines += middle.count("\n")
        note = (
            f"[... output truncated: {dropped_chars} characters ({dropped_lines} lines) omitted from the "
            "middle; redirect the output to a file and read parts of it to see them ...]"
        )
        return f"{_join(first, note)}\n{last}"
