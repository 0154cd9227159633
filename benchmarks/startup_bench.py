"""Start-up and loop overhead of the runtime, with same-run baselines. Prints a table.

    python benchmarks/startup_bench.py [--runs 5] [--round-trips 300]

1. `godwit -p` from process start to the first request on the wire (a fake Messages API server
   on 127.0.0.1 records when the request arrives), for Claude and for an OpenAI-compatible
   endpoint, against the baseline `python -c pass` and the bare import of each SDK.
2. Loop overhead per tool round trip with the scripted provider and a no-op tool (model call,
   events, log writes with their fsyncs, permission check, tool dispatch).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.replies import say


def _median_run(cmd: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        t0 = time.monotonic()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append(time.monotonic() - t0)
    return statistics.median(times)


def first_request(model: str, runs: int, env: dict[str, str], cwd: Path) -> float:
    """Seconds from Popen to the request's arrival at the fake server (median)."""
    times = []
    with FakeLLMServer() as server:
        run_env = {
            **env,
            "ANTHROPIC_BASE_URL": server.url,
            "ANTHROPIC_API_KEY": "bench",
            "OPENAI_BASE_URL": server.openai_url,
            "OPENAI_API_KEY": "bench",
        }
        for _ in range(runs):
            server.push(say("ok"))
            before = len(server.requests)
            t0 = time.monotonic()
            proc = subprocess.run(
                [sys.executable, "-m", "agent.cli", "-p", "hi", "--model", model],
                cwd=cwd,
                env=run_env,
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise SystemExit(f"godwit failed: {proc.stderr}")
            arrived = next(r for r in server.requests[before:] if r.method == "POST").received_at
            times.append(arrived - t0)
    return statistics.median(times)


def loop_overhead(round_trips: int, home: Path, cwd: Path) -> tuple[float, float]:
    """Milliseconds per tool round trip through the loop, and per bare tool call."""
    from agent import Agent, tool
    from agent.providers.scripted import ScriptedProvider

    @tool(read_only=True)
    def noop(x: int = 0) -> str:
        """Do nothing."""
        return "ok"

    turns = [{"tool_calls": [{"name": "noop", "input": {"x": i}}]} for i in range(round_trips)]
    turns.append({"text": "done"})
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
    args = p.parse_args()
    home = Path(tempfile.mkdtemp(prefix="godwit-bench-home-"))
    cwd = Path(tempfile.mkdtemp(prefix="godwit-bench-repo-"))
    subprocess.run(["git", "init", "-q", str(cwd)], check=True)
    (cwd / "README.md").write_text("bench\n")
    env = {**os.environ, "GODWIT_HOME": str(home), "PYTHONPATH": str(ROOT)}
    py = sys.executable
    rows = [
        ("python -c pass (baseline)", _median_run([py, "-c", "pass"], args.runs, env), None),
        (
            "import anthropic (SDK alone)",
            _median_run([py, "-c", "import anthropic"], args.runs, env),
            None,
        ),
        (
            "import openai (SDK alone)",
            _median_run([py, "-c", "import openai"], args.runs, env),
            None,
        ),
        ("godwit --help", _median_run([py, "-m", "agent.cli", "--help"], args.runs, env), None),
        (
            "godwit -p: start -> first request (anthropic)",
            first_request("anthropic:claude-sonnet-4-5", args.runs, env, cwd),
            0.5,
        ),
        (
            "godwit -p: start -> first request (openai)",
            first_request("openai:gpt-4o", args.runs, env, cwd),
            0.5,
        ),
    ]
    per_trip, bare = loop_overhead(args.round_trips, home, cwd)
    print(f"\nStart-up (median of {args.runs} runs, seconds) on {os.cpu_count()} cores")
    print(f"{'measurement':<50} {'time':>8} {'target':>8}")
    for name, value, target in rows:
        print(f"{name:<50} {value:>8.3f} {f'<= {target:.1f}' if target else '':>8}")
    print(f"\nLoop overhead ({args.round_trips} tool round trips, scripted provider, ms)")
    print(f"{'measurement':<50} {'time':>8} {'target':>8}")
    print(f"{'bare tool call (baseline)':<50} {bare:>8.3f}")
    print(f"{'loop round trip (model call + tool + log)':<50} {per_trip:>8.3f} {'<= 5.0':>8}")


if __name__ == "__main__":
    main()
