"""Context editing and compaction over a long synthetic session: tokens sent per request.

A 200-request coding session (user turns, each followed by agent steps) with realistic tool
output, sizes varied with a fixed seed: file views of 200-400 lines, pytest logs, grep and glob
results, edits and file creations, memory calls. The same session is sent three ways through
`agent.context.ContextPolicy` (the path the loop takes for non-Anthropic providers):

  baseline    no editing, no compaction (what a naive agent sends)
  compact only  automatic compaction at 0.8 of the window, no clearing
  editing     client-side clearing of old tool results, default settings
  edit+compact  the same, plus automatic compaction at 0.8 of the window; the summary comes
              from a deterministic fake summariser (no model involved)
  +inputs     edit+compact with clear_tool_inputs=True (not a default)
  @0.6        edit+compact with compact_at_fraction=0.6 (not a default)

The exit status is 0 when the default configuration (edit+compact) meets both targets at every
window asked for.

Tokens are the byte heuristic of agent.context.tokens (what the policy itself sees). Targets: the peak
request under 60% of the window for the whole session, and at least 3x fewer tokens sent in
total than the baseline.

    python benchmarks/context_bench.py [--turns 200] [--seed 0] [--window 200000 128000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GODWIT_HOME", tempfile.mkdtemp(prefix="godwit-bench-"))

from agent.context.compaction import CompactionError, compact, summary_message
from agent.context.policy import ContextPolicy, ContextSettings
from agent.messages import Message, TextBlock, ToolResultBlock, ToolUseBlock
from agent.providers.base import ModelRequest, ModelResponse, TokenUsage

WORDS = [
    "config",
    "session",
    "event",
    "token",
    "cache",
    "result",
    "parser",
    "buffer",
    "index",
    "stream",
    "request",
    "message",
    "handler",
    "state",
    "value",
    "items",
    "path",
    "offset",
    "window",
    "limit",
    "count",
    "retry",
    "error",
    "model",
    "block",
]
KEYWORDS = ["def", "return", "if", "for", "with", "raise", "yield", "assert", "elif", "while"]


# --------------------------------------------------------------------------------------------
# The synthetic session


def _ident(rng: random.Random) -> str:
    return "_".join(rng.sample(WORDS, rng.randint(1, 3)))


def code_lines(rng: random.Random, n: int) -> list[str]:
    """Python-looking source lines with indentation, calls and literals."""
    lines, depth = [], 0
    for _ in range(n):
        r = rng.random()
        if r < 0.08:
            depth = 0
            line = (
                f"def {_ident(rng)}({_ident(rng)}: int, {_ident(rng)}: str | None = None) -> dict:"
            )
            depth = 1
        elif r < 0.2 and depth < 4:
            line = (
                "    " * depth
                + f"{rng.choice(['if', 'for', 'with', 'while'])} {_ident(rng)}({_ident(rng)}):"
            )
            depth += 1
        elif r < 0.3:
            line = ""
            depth = max(1, depth - 1)
        else:
            kw = rng.choice(KEYWORDS[1:]) + " " if rng.random() < 0.3 else ""
            line = "    " * depth + (
                f"{kw}{_ident(rng)} = self.{_ident(rng)}[{rng.randint(0, 99)}]"
                f".get('{rng.choice(WORDS)}', {rng.random():.3f})  # {rng.choice(WORDS)}"
            )
        lines.append(line)
    return lines


def file_view(rng: random.Random, path: str) -> str:
    n = rng.randint(200, 400)
    return "\n".join(f"{i + 1:6}\t{line}" for i, line in enumerate(code_lines(rng, n)))


def pytest_output(rng: random.Random) -> str:
    n = rng.randint(40, 600)
    out = ["============================= test session starts =============================="]
    for i in range(n):
        mod = f"tests/test_{rng.choice(WORDS)}.py"
        out.append(
            f"{mod}::test_{_ident(rng)}[{i}] {'PASSED' if rng.random() < 0.93 else 'FAILED'}"
        )
    if rng.random() < 0.6:
        out += [
            "",
            "=================================== FAILURES ===================================",
        ]
        out += [
            f"E   AssertionError: {_ident(rng)} != {rng.randint(0, 999)}"
            for _ in range(rng.randint(2, 30))
        ]
        out += code_lines(rng, rng.randint(10, 60))
    out.append(f"===== {n - 3} passed, 3 failed in {rng.uniform(1, 90):.2f}s =====")
    return "\n".join(out)


def grep_result(rng: random.Random) -> str:
    return "\n".join(
        f"src/{rng.choice(WORDS)}/{rng.choice(WORDS)}.py:{rng.randint(1, 900)}:{line.strip()}"
        for line in code_lines(rng, rng.randint(10, 120))
    )


def make_call(rng: random.Random, i: int) -> tuple[ToolUseBlock, str]:
    """One tool call and its output."""
    path = f"src/{rng.choice(WORDS)}/{rng.choice(WORDS)}.py"
    r = rng.random()
    tid = f"toolu_{i:04d}"
    if r < 0.38:
        use = ToolUseBlock(
            id=tid, name="str_replace_based_edit_tool", input={"command": "view", "path": path}
        )
        return use, file_view(rng, path)
    if r < 0.58:
        use = ToolUseBlock(
            id=tid,
            name="bash",
            input={"command": f"python -m pytest tests/ -x -q -k {rng.choice(WORDS)}"},
        )
        return use, pytest_output(rng)
    if r < 0.73:
        use = ToolUseBlock(id=tid, name="grep", input={"pattern": rng.choice(WORDS), "path": "src"})
        return use, grep_result(rng)
    if r < 0.80:
        use = ToolUseBlock(id=tid, name="glob", input={"pattern": "**/*.py"})
        return use, "\n".join(
            f"src/{rng.choice(WORDS)}/{_ident(rng)}.py" for _ in range(rng.randint(5, 80))
        )
    if r < 0.93:
        old = "\n".join(code_lines(rng, rng.randint(2, 12)))
        new = "\n".join(code_lines(rng, rng.randint(2, 20)))
        use = ToolUseBlock(
            id=tid,
            name="str_replace_based_edit_tool",
            input={"command": "str_replace", "path": path, "old_str": old, "new_str": new},
        )
        return use, f"The file {path} has been edited.\n" + "\n".join(code_lines(rng, 12))
    if r < 0.97:
        text = "\n".join(code_lines(rng, rng.randint(80, 300)))
        use = ToolUseBlock(
            id=tid,
            name="str_replace_based_edit_tool",
            input={"command": "create", "path": path, "file_text": text},
        )
        return use, f"File created successfully at: {path}"
    use = ToolUseBlock(id=tid, name="memory", input={"command": "view", "path": "/memories"})
    return use, "Directory: /memories\n- progress.md\n- decisions.md\n" + "\n".join(
        f"* {_ident(rng)}" for _ in range(rng.randint(3, 30))
    )


def synthetic_session(requests: int, seed: int) -> list[list[Message]]:
    """The messages each of `requests` model calls appends, in order.

    Item k is what is added before request k: a user prompt (every ~25 calls) or the previous
    assistant step and its tool results."""
    rng = random.Random(seed)
    additions: list[list[Message]] = []
    n_calls = 0
    pending: list[Message] = [
        Message.user("Migrate the config loader to pydantic and fix the tests.")
    ]
    for k in range(requests):
        additions.append(pending)
        if k and rng.random() < 0.04:  # the agent ends its turn; the user asks for more
            pending = [
                Message(
                    role="assistant",
                    content=[TextBlock(text="Done: " + " ".join(rng.choices(WORDS, k=60)))],
                ),
                Message.user("Next: " + " ".join(rng.choices(WORDS, k=rng.randint(10, 80)))),
            ]
            continue
        uses, results = [], []
        for _ in range(1 if rng.random() < 0.85 else 2):
            use, out = make_call(rng, n_calls)
            n_calls += 1
            uses.append(use)
            results.append(ToolResultBlock(tool_use_id=use.id, content=out))
        text = TextBlock(text=" ".join(rng.choices(WORDS, k=rng.randint(8, 60))))
        pending = [
            Message(role="assistant", content=[text, *uses]),
            Message(role="user", content=results),
        ]
    return additions


SYSTEM = "You are Godwit, a coding agent.\n" + "\n".join(
    f"- Rule {i}: " + " ".join(random.Random(i).choices(WORDS, k=25)) for i in range(60)
)
TOOLS = [
    {
        "name": name,
        "description": " ".join(random.Random(name).choices(WORDS, k=120)),
        "input_schema": {
            "type": "object",
            "properties": {w: {"type": "string", "description": w * 4} for w in WORDS[:8]},
        },
    }
    for name in ("str_replace_based_edit_tool", "bash", "grep", "glob", "memory")
]


# --------------------------------------------------------------------------------------------
# A deterministic summariser standing in for the model


class FakeSummariser:
    """A Provider whose replies are a fixed-size digest of the transcript it is sent."""

    name = "bench"
    model = "fake-summariser"

    def __init__(self, context_window: int) -> None:
        self.context_window = context_window
        self.calls = 0

    async def stream(self, request: ModelRequest):
        self.calls += 1
        prompt = request.messages[0].text()
        paths = sorted({w for w in prompt.split() if w.startswith("src/") and w.endswith(".py")})
        summary = (
            "## Task\nMigrate the config loader to pydantic and fix the tests.\n"
            "## Files\n"
            + "\n".join(f"- {p}: viewed or edited" for p in paths[:120])
            + "\n## Current state\nTests partly fixed.\n## Next steps\nContinue with the failing tests.\n"
        )
        yield ModelResponse(
            message=Message(role="assistant", content=[TextBlock(text=summary)]),
            stop_reason="end_turn",
            usage=TokenUsage(),
            model=self.model,
        )

    async def count_tokens(self, request: ModelRequest) -> int | None:
        return None

    def cost(self, usage: TokenUsage) -> float:
        return 0.0


# --------------------------------------------------------------------------------------------
# Running the session


async def run(
    additions: list[list[Message]],
    window: int,
    *,
    editing: bool,
    compaction: bool,
    **overrides: object,
) -> dict:
    settings = ContextSettings(enabled=editing, auto_compact=compaction, **overrides)
    provider = FakeSummariser(window)
    policy = ContextPolicy(settings, provider)
    convo: list[Message] = []
    sizes: list[int] = []
    edits = compactions = failures = prefix_kept = 0
    previous: list[Message] | None = None
    for added in additions:
        convo.extend(added)
        request = ModelRequest(system=SYSTEM, tools=TOOLS, messages=convo)
        prep = await policy.prepare(request)
        if prep.compact:
            try:
                result = await compact(
                    provider,
                    prep.request.messages,
                    keep_last_turns=settings.compact_keep_last_turns,
                    keep_tokens=int(settings.compact_keep_fraction * window),
                    counter=policy.counter,
                )
            except CompactionError:
                failures += 1
            else:
                compactions += 1
                # The log keeps everything; what the model sees restarts from the summary.
                # (Cut indices are the same in the view and the conversation: editing never
                # adds or removes messages.)
                convo = [summary_message(result.summary), *convo[result.cut_index :]]
                request = ModelRequest(system=SYSTEM, tools=TOOLS, messages=convo)
                prep = await policy.prepare(request)
        if prep.event is not None:
            edits += 1
        sent = prep.request.messages
        if (
            previous is not None
            and len(sent) >= len(previous)
            and all(a == b for a, b in zip(sent, previous))
        ):
            prefix_kept += 1
        previous = sent
        sizes.append(prep.tokens)
    return {
        "min": min(sizes),
        "median": int(statistics.median(sizes)),
        "peak": max(sizes),
        "total": sum(sizes),
        "edits": edits,
        "compactions": compactions,
        "failures": failures,
        "prefix_kept": prefix_kept,
        "requests": len(sizes),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--turns", type=int, default=200, help="model requests in the session")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--window", type=int, nargs="+", default=[200_000, 128_000])
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    additions = synthetic_session(args.turns, args.seed)
    ok = True
    for window in args.window:
        rows = {
            "baseline": asyncio.run(run(additions, window, editing=False, compaction=False)),
            "compact only": asyncio.run(run(additions, window, editing=False, compaction=True)),
            "editing": asyncio.run(run(additions, window, editing=True, compaction=False)),
            "edit+compact": asyncio.run(run(additions, window, editing=True, compaction=True)),
            # Two non-default variants, to show what holds a small window under 60%.
            "  +inputs": asyncio.run(
                run(additions, window, editing=True, compaction=True, clear_tool_inputs=True)
            ),
            "  @0.6": asyncio.run(
                run(additions, window, editing=True, compaction=True, compact_at_fraction=0.6)
            ),
        }
        base = rows["baseline"]["total"]
        print(f"\nwindow {window:,} tokens, {args.turns} requests, seed {args.seed}")
        print(
            f"{'config':<13} {'min':>9} {'median':>9} {'peak':>9} {'peak/win':>8} "
            f"{'total':>12} {'vs base':>8} {'edits':>6} {'compact':>7} {'prefix kept':>11}"
        )
        for name, r in rows.items():
            print(
                f"{name:<13} {r['min']:>9,} {r['median']:>9,} {r['peak']:>9,} "
                f"{r['peak'] / window:>8.1%} {r['total']:>12,} {base / r['total']:>7.2f}x "
                f"{r['edits']:>6} {r['compactions']:>7} {r['prefix_kept']:>5}/{r['requests']}"
            )
        for name in ("edit+compact", "  +inputs", "  @0.6"):
            best = rows[name]
            peak_ok = best["peak"] < 0.6 * window
            total_ok = base / best["total"] >= 3.0
            if name == "edit+compact":
                ok &= peak_ok and total_ok
            print(
                f"{name.strip():<13} peak < 60% of window: {'PASS' if peak_ok else 'FAIL'} "
                f"({best['peak'] / window:.1%}); total >= 3x fewer than baseline: "
                f"{'PASS' if total_ok else 'FAIL'} ({base / best['total']:.2f}x)"
            )
    print(f"\n({time.perf_counter() - t0:.1f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
