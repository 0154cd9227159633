"""Start-up side by side: Claude Code, Godwit and a bare SDK script, in one run. Prints a table.

    python benchmarks/startup_bench.py [--runs 5] [--round-trips 300] [--no-claude]

1. From process start to the first request on the wire (a fake Messages API on 127.0.0.1
   records when each request arrives), median of --runs, for: `claude -p` (Claude Code, installed
   with npm into .bench/claude-code/ on first use; skipped when npm cannot install it), `godwit -p`
   through the fast-start server (warm), `godwit -p` without it (`GODWIT_NO_SERVER=1`), and a
   bare Python script that imports the anthropic SDK and sends one request.
2. The terminal UI: from process start until typed text shows in the prompt (a pseudo-terminal
   with echo off, so only the UI itself can draw the text), with and without the server.
3. Loop overhead per tool round trip with the scripted provider and a no-op tool.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import pty
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.replies import say

CACHE = ROOT / ".bench"
# Exactly what the installed `godwit` console script runs.
GODWIT = [
    sys.executable,
    "-c",
    "import sys; from agent.faststart.client import main; sys.exit(main())",
]
BARE_SDK = (
    "import anthropic; anthropic.Anthropic().messages.create(model='claude-sonnet-5-5', "
    "max_tokens=16, messages=[{'role': 'user', 'content': 'hi'}])"
)
CLAUDE_QUIET = {
    "DISABLE_TELEMETRY": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
}


def claude_code() -> Path | None:
    """The `claude` executable, installed into .bench/claude-code/ with npm if needed."""
    folder = CACHE / "claude-code"
    exe = folder / "node_modules" / ".bin" / "claude"
    if not exe.exists() and shutil.which("npm"):
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(folder),
                "@anthropic-ai/claude-code",
            ],
            capture_output=True,
            timeout=600,
        )
    return exe if exe.exists() else None


def first_request(
    cmd: list[str], env: dict[str, str], cwd: Path, server: FakeLLMServer, runs: int
) -> float:
    """Median seconds from Popen to the first POST to the Messages API."""
    times = []
    for _ in range(runs):
        server.script(*[say("ok") for _ in range(4)])
        before = len(server.requests)
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        posts = [
            r
            for r in server.requests[before:]
            if r.method == "POST"
            and r.path.startswith("/v1/messages")
            and not r.path.endswith("count_tokens")
        ]
        times.append(posts[0].received_at - t0)
    return statistics.median(times)


def wait_for_server(home: Path, timeout: float = 180.0) -> None:
    """Block until a fast-start server under `home` is serving (the first run starts it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for log in (home / "run").glob("*.log"):
            if "serving on" in log.read_text(errors="replace"):
                return
        time.sleep(0.2)
    raise SystemExit("the fast-start server did not come up")


def stop_servers(home: Path) -> None:
    for log in (home / "run").glob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if "serving on" in line:
                pid = int(line.split("[", 1)[1].split("]", 1)[0])
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass


def ui_ready(cmd: list[str], env: dict[str, str], cwd: Path, runs: int) -> float:
    """Median seconds until typing shows in the UI's prompt: a key every 20 ms from the start
    (the UI discards what came before it read the terminal), echo off so that only the UI can
    draw the keys; the time is that of the first key it drew."""
    times = []
    for _ in range(runs):
        master, slave = pty.openpty()
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        termios.tcsetwinsize(slave, (30, 100))
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env={**env, "TERM": "xterm-256color"},
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        seen, ready, sent = b"", None, []
        while time.monotonic() - t0 < 120 and ready is None:
            sent.append(time.monotonic() - t0)
            os.write(master, b"z")
            while select.select([master], [], [], 0.02)[0]:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
                if b"zz" in seen:
                    # Drawn as soon as the UI read them: the first drawn key is the one sent
                    # just before the UI began reading (len(run of z) keys ago).
                    ready = sent[max(0, len(sent) - _drawn(seen))]
                    break
        os.write(master, b"\x03\x03\x04\x04")
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(master)
        if ready is None:
            raise SystemExit(f"the UI never showed typed text: {seen[-500:]!r}")
        times.append(ready)
    return statistics.median(times)


def _drawn(screen: bytes) -> int:
    """How many typed keys the UI shows: the longest run of z in what it drew."""
    longest = current = 0
    for byte in screen:
        current = current + 1 if byte == ord("z") else 0
        longest = max(longest, current)
    return longest


def loop_overhead(round_trips: int, home: Path, cwd: Path) -> tuple[float, float]:
    """Milliseconds per tool round trip through the loop, and per bare tool call."""
    from agent import Agent, tool
    from agent.providers.scripted import ScriptedProvider

    @tool(read_only=True)
    def noop(x: int = 0) -> str:
        """Do nothing."""
        return "ok"

    # Explicit usage: the scripted provider otherwise sizes every request by serialising the
    # whole conversation, a cost of the stand-in model, not of the loop.
    usage = {"input_tokens": 100, "output_tokens": 10}
    turns = [
        {"tool_calls": [{"name": "noop", "input": {"x": i}}], "usage": usage}
        for i in range(round_trips)
    ]
    turns.append({"text": "done", "usage": usage})
    agent = Agent(
        cwd=cwd,
        home=home,
        provider=ScriptedProvider(turns),
        tools=[noop],
        settings={"checkpoints": False},
    )
    agent.runtime()
    t0 = time.perf_counter()
    result = agent.run("go")
    elapsed = time.perf_counter() - t0
    assert result.num_turns == round_trips + 1, result
    agent.close()
    from tools.base import ToolContext

    ctx = ToolContext(cwd=cwd)
    t1 = time.perf_counter()
    for i in range(round_trips):
        noop.run({"x": i}, ctx)
    bare = time.perf_counter() - t1
    return elapsed / round_trips * 1000, bare / round_trips * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--round-trips", type=int, default=300)
    p.add_argument("--no-claude", action="store_true", help="skip Claude Code")
    p.add_argument("--no-ui", action="store_true", help="skip the terminal UI rows")
    args = p.parse_args()
    home = Path(tempfile.mkdtemp(prefix="godwit-bench-home-"))
    user_home = Path(tempfile.mkdtemp(prefix="godwit-bench-user-"))
    cwd = Path(tempfile.mkdtemp(prefix="godwit-bench-repo-"))
    subprocess.run(["git", "init", "-q", str(cwd)], check=True)
    (cwd / "README.md").write_text("bench\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_"))}
    env = {**base, "GODWIT_HOME": str(home), "PYTHONPATH": str(ROOT), "GODWIT_SERVER_IDLE_S": "600"}
    slow = {**env, "GODWIT_NO_SERVER": "1"}
    rows: list[tuple[str, float | None, str]] = []
    claude = None if args.no_claude else claude_code()
    try:
        with FakeLLMServer() as server:
            api = {"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "sk-ant-bench"}
            server.script(say("ok"))
            subprocess.run(
                GODWIT + ["-p", "warm up"],
                cwd=cwd,
                env={**env, **api},
                capture_output=True,
                timeout=300,
            )
            wait_for_server(home)
            rows.append(
                (
                    "python -c pass (interpreter alone)",
                    _median([sys.executable, "-c", "pass"], env, cwd, args.runs),
                    "",
                )
            )
            if claude:
                version = subprocess.run(
                    [str(claude), "--version"], capture_output=True, text=True
                ).stdout.strip()
                rows.append(
                    (
                        f"claude -p hi  (Claude Code {version.split()[0]})",
                        first_request(
                            [str(claude), "-p", "hi"],
                            {**base, **api, **CLAUDE_QUIET, "HOME": str(user_home)},
                            cwd,
                            server,
                            args.runs,
                        ),
                        "first request",
                    )
                )
            else:
                rows.append(("claude -p hi  (Claude Code not installed: skipped)", None, ""))
            rows.append(
                (
                    "godwit -p hi  (fast-start server warm)",
                    first_request(GODWIT + ["-p", "hi"], {**env, **api}, cwd, server, args.runs),
                    "first request",
                )
            )
            rows.append(
                (
                    "godwit -p hi  (GODWIT_NO_SERVER=1)",
                    first_request(GODWIT + ["-p", "hi"], {**slow, **api}, cwd, server, args.runs),
                    "first request",
                )
            )
            rows.append(
                (
                    "python: import anthropic + messages.create",
                    first_request(
                        [sys.executable, "-c", BARE_SDK], {**base, **api}, cwd, server, args.runs
                    ),
                    "first request",
                )
            )
            if not args.no_ui:
                rows.append(
                    (
                        "godwit (terminal UI, server warm)",
                        ui_ready(GODWIT, {**env, **api}, cwd, args.runs),
                        "typing shows",
                    )
                )
                rows.append(
                    (
                        "godwit (terminal UI, GODWIT_NO_SERVER=1)",
                        ui_ready(GODWIT, {**slow, **api}, cwd, args.runs),
                        "typing shows",
                    )
                )
    finally:
        stop_servers(home)
    per_trip, bare = loop_overhead(args.round_trips, home, cwd)
    load = os.getloadavg()
    print(
        f"\nStart-up, median of {args.runs} runs, seconds. {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.node()}: {os.cpu_count()} cores, {platform.platform()}, Python "
        f"{platform.python_version()}, load average {load[0]:.1f}"
    )
    print(f"Command: python benchmarks/startup_bench.py --runs {args.runs}\n")
    print(f"| {'what':<52} | {'seconds':>7} | until |")
    print(f"| {'-' * 52} | {'-' * 7} | ----- |")
    for name, value, until in rows:
        shown = f"{value:7.3f}" if value is not None else "      -"
        print(f"| {name:<52} | {shown} | {until} |")
    print(
        f"\nLoop overhead ({args.round_trips} tool round trips, scripted provider, ms): "
        f"bare tool call {bare:.3f}, loop round trip {per_trip:.3f} (target <= 5.0)"
    )


def _median(cmd: list[str], env: dict[str, str], cwd: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.monotonic()
        subprocess.run(cmd, env=env, cwd=cwd, check=True, capture_output=True)
        times.append(time.monotonic() - t0)
    return statistics.median(times)


if __name__ == "__main__":
    main()
