"""`bash`: one persistent shell per session (Anthropic's bash_20250124).

How a command runs: the session's shell is `bash --noprofile --norc` in its own process group
(start_new_session), stdout and stderr merged into one pipe. Each command is written to a file
and run in that shell as `{ . FILE ; } < /dev/null`, followed by `printf` of a random sentinel
carrying `$?`; the output up to the sentinel is the command's output. So `cd` and `export`
persist between calls, commands can never read the shell's own input (stdin is /dev/null:
`cat` returns at once), and the exit status is exact.

Results:
- a command that ran: its output (capped: head and tail kept, the cut stated), and when the
  exit status is not 0, a last line `[exit code N]`. is_error stays False for a non-zero exit:
  the command ran and the model reads the status (a failing `grep` or test run is information,
  not a tool failure).
- timed out (default 120 s, at most 600) or interrupted (ctx.cancel, polled every 50 ms): the
  whole process group is killed (SIGTERM, then SIGKILL after 1 s), including anything it put in
  the background; the partial output is returned with is_error=True and a note, and the next
  call starts a fresh shell (cwd and environment reset) — the result says so.
- `restart: true` kills the shell and starts a new one (then runs `command` if one is given).

The shell's environment is os.environ plus GIT_PAGER=cat, PAGER=cat, TERM=dumb. At session end
the runtime calls `tools.close_all(ctx)` (or `BashTool.close(ctx)`), which kills the shell.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
import weakref
from typing import Any, ClassVar

from pydantic import Field

from ._common import BaseTool, ToolError, ToolInput, ok
from .base import ToolContext, ToolResult
from .readonly_shell import is_read_only_command

STATE_KEY = "bash"
CLOSERS_KEY = "_closers"
DEFAULT_TIMEOUT_S = 120
MAX_TIMEOUT_S = 600
DEFAULT_MAX_OUTPUT_CHARS = 30_000
POLL_S = 0.05
KILL_GRACE_S = 1.0

# Bytes kept in memory while a command runs: the first HEAD and the last TAIL; the middle of a
# huge output is counted and dropped as it arrives.
_START_LOCK = threading.Lock()  # two calls of one session must not both start a shell
_HEAD_BYTES = 256 * 1024
_TAIL_BYTES = 512 * 1024


class BashInput(ToolInput):
    command: str | None = Field(None, description="The bash command to run")
    restart: bool = Field(False, description="Kill the shell and start a new one (cwd and environment reset)")
    timeout: int | None = Field(
        None, ge=1, le=MAX_TIMEOUT_S, description=f"Seconds before the command is killed (default {DEFAULT_TIMEOUT_S}, at most {MAX_TIMEOUT_S})"
    )


def group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` is still running (zombies don't count).

    A killed orphan stays a zombie until init reaps it, and some containers' PID 1 never does,
    so `killpg(pgid, 0)` alone would keep saying "alive". Linux: read /proc; elsewhere: killpg.
    """
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    if not os.path.isdir("/proc/self"):
        return True  # pragma: no cover - not Linux
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields: state, ppid, pgrp, ...
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _kill_group(pgid: int, proc: subprocess.Popen | None = None, grace: float = KILL_GRACE_S) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after `grace` seconds."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()  # reap the shell so it does not keep the group alive as a zombie
        if not group_alive(pgid):
            break
        time.sleep(0.02)
    else:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if proc is not None:
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILLed, should not happen
            pass


def _cleanup(pgid: int, tmpdir: str, live: list[bool]) -> None:
    """Finaliser: no shell survives its owner (interpreter exit, forgotten close)."""
    if live[0]:
        live[0] = False
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    shutil.rmtree(tmpdir, ignore_errors=True)


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


class _Capture:
    """The output of one command: head and tail kept, the middle counted and dropped."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.cut_at: int | None = None
        self.dropped_chars = 0
        self.dropped_lines = 0

    def feed(self, chunk: bytes) -> None:
        self.buf += chunk
        if len(self.buf) > _HEAD_BYTES + 2 * _TAIL_BYTES:
            end = len(self.buf) - _TAIL_BYTES
            middle = bytes(self.buf[_HEAD_BYTES:end])
            self.dropped_chars += len(middle.decode("utf-8", "replace"))
            self.dropped_lines += middle.count(b"\n")
            del self.buf[_HEAD_BYTES:end]
            self.cut_at = _HEAD_BYTES


class _Shell:
    """A running `bash --noprofile --norc` and the thread that reads its output."""

    def __init__(self, cwd: str, env: dict[str, str]) -> None:
        self.tmpdir = tempfile.mkdtemp(prefix="godwit-bash-")
        self.cmd_file = os.path.join(self.tmpdir, "command")
        try:
            self.proc = subprocess.Popen(
                ["bash", "--noprofile", "--norc"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
                bufsize=0,
            )
        except BaseException:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            raise
        self.pgid = self.proc.pid
        # A copy of the output pipe on fd 9 carries the end-of-command marker, so a command that
        # redirects the shell's own stdout (`exec > /dev/null`) does not hide it.
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"exec 9>&1\n")
        self.watchdog = _watchdog(self.pgid)
        self.cond = threading.Condition()
        self.capture = _Capture()
        self.eof = False
        self.dead = False
        self.run_lock = threading.Lock()
        self._live = [True]  # cleared once the group is killed, so a finaliser never signals a reused id
        self._finalizer = weakref.finalize(self, _cleanup, self.pgid, self.tmpdir, self._live)
        self.reader = threading.Thread(target=self._read, name=f"bash-reader-{self.pgid}", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self.cond:
                if not chunk:
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.capture.feed(chunk)
                self.cond.notify_all()

    def alive(self) -> bool:
        return not self.dead and self.proc.poll() is None

    def kill(self) -> None:
        """Kill the whole process group; wait briefly for the reader to drain the pipe."""
        self.dead = True
        if self._live[0]:
            _kill_group(self.pgid, self.proc)
            self._live[0] = False
        self.reader.join(timeout=1.0)
        files = [self.proc.stdin]
        if not self.reader.is_alive():  # never close an fd another thread is still reading
            files.append(self.proc.stdout)
        for f in files:
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass

    def close(self) -> None:
        if self._live[0]:
            self.kill()
        self._finalizer()
        if self.watchdog is not None and self.watchdog.poll() is None:
            self.watchdog.kill()
            self.watchdog.wait()


def _watchdog(pgid: int) -> subprocess.Popen | None:
    """A sleeping sentry outside the shell's group: if this process dies without cleaning up
    (kill -9), it kills the whole group, so no command keeps changing the tree behind a
    resumed session. It checks once a second and costs nothing else."""
    script = (f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
              f"kill -KILL -{pgid} 2>/dev/null")
    try:
        return subprocess.Popen(["sh", "-c", script], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    except OSError:
        return None


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
    ) -> None:
        self.default_timeout = min(default_timeout, MAX_TIMEOUT_S)
        self.max_output_chars = max_output_chars
        self.extra_env = dict(extra_env or {})

    def anthropic_spec(self) -> dict[str, Any]:
        return {"type": "bash_20250124", "name": self.name}

    def is_read_only(self, args: dict[str, Any]) -> bool:
        """A lone command from the strict read-only list (tools/readonly_shell.py)."""
        return (isinstance(args, dict) and not args.get("restart")
                and is_read_only_command(args.get("command")))

    # -- shell lifecycle -----------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"GIT_PAGER": "cat", "PAGER": "cat", "TERM": "dumb"})
        env.update(self.extra_env)
        return env

    def _shell(self, ctx: ToolContext) -> tuple[_Shell, bool]:
        """The session's shell, started if needed; the flag says a new one was started."""
        with _START_LOCK:
            return self._shell_locked(ctx)

    def _shell_locked(self, ctx: ToolContext) -> tuple[_Shell, bool]:
        shell = ctx.state.get(STATE_KEY)
        if isinstance(shell, _Shell) and shell.alive():
            return shell, False
        if isinstance(shell, _Shell):
            shell.close()
        try:
            shell = _Shell(str(ctx.cwd), self._env())
        except OSError as e:
            raise ToolError(f"Could not start bash: {e}") from None
        ctx.state[STATE_KEY] = shell
        ctx.state.setdefault(CLOSERS_KEY, {})[STATE_KEY] = lambda: BashTool.close(ctx)
        return shell, True

    @staticmethod
    def close(ctx: ToolContext) -> None:
        """Kill the session's shell (and everything it started). Safe to call twice."""
        shell = ctx.state.pop(STATE_KEY, None)
        if isinstance(shell, _Shell):
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
            return ToolResult(content="Interrupted before the command started; it was not run.", is_error=True)
        timeout = a.timeout or self.default_timeout
        shell, _ = self._shell(ctx)
        with shell.run_lock:
            result = self._execute(shell, a.command, timeout, ctx)
        if prefix:
            result = ToolResult(content=prefix + result.content, is_error=result.is_error)
        return result

    def _execute(self, shell: _Shell, command: str, timeout: float, ctx: ToolContext) -> ToolResult:
        sentinel = f"__godwit_done_{uuid.uuid4().hex}__"
        with open(shell.cmd_file, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(command)
            if not command.endswith("\n"):
                f.write("\n")
        wrapper = f"{{ . {shell.cmd_file} ; }} < /dev/null\nprintf '\\n%s %s\\n' '{sentinel}' \"$?\" >&9\n"
        pattern = re.compile(b"\n" + sentinel.encode() + rb" (\d+)\n")
        with shell.cond:
            shell.capture = _Capture()
        try:
            assert shell.proc.stdin is not None
            shell.proc.stdin.write(wrapper.encode())
            shell.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            shell.close()
            raise ToolError("The shell had exited; a new one will start on the next call. Please run the command again.") from None

        deadline = time.monotonic() + timeout
        outcome = "running"
        exit_code: int | None = None
        with shell.cond:
            while True:
                tail = bytes(shell.capture.buf[-(len(sentinel) + 64) :])
                m = pattern.search(tail)
                if m:
                    exit_code = int(m.group(1))
                    outcome = "done"
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

        if outcome in ("interrupted", "timeout"):
            shell.kill()  # the whole group: the command, its children, background jobs, the shell
        elif outcome == "exited":
            shell.kill()  # the shell is gone; take its background jobs with it and drain the pipe

        with shell.cond:
            cap = shell.capture
            data = bytes(cap.buf)
        if outcome == "done":
            m = None
            for m in pattern.finditer(data):
                pass
            assert m is not None
            data = data[: m.start()]
        output = self._format(data, cap, shell.cmd_file)

        if outcome == "done":
            assert exit_code is not None
            if exit_code != 0:
                output = _join(output, f"[exit code {exit_code}]")
            return ok(output if output else "(no output)")
        restart_note = "The shell was killed; the next command starts a new shell (working directory and environment reset)."
        if outcome == "exited":
            BashTool.close(ctx)
            rc = shell.proc.returncode
            note = f"[The shell exited (exit code {rc}); the next command starts a new shell (working directory and environment reset).]"
            return ok(_join(output, note))
        BashTool.close(ctx)
        if outcome == "timeout":
            note = f"[Command timed out after {timeout:g} s; it and everything it started were killed. {restart_note}]"
        else:
            note = f"[Command interrupted by the user; it and everything it started were killed. {restart_note}]"
        return ToolResult(content=_join(output, note), is_error=True)

    def _format(self, data: bytes, cap: _Capture, cmd_file: str) -> str:
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
