"""How fast the UI takes in a long streamed reply: redraw on every delta vs. at most every 50 ms.

    python tests/agent/ui/bench_stream.py [WORDS ...]

Runs the real app headless (`run_test`, 100x30) on a scripted reply of WORDS words (one delta
per word, no delay), from Enter until the turn is over and drawn, once per variant in the same
run. Writes nothing outside a temporary GODWIT_HOME and work tree.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path


async def one(words: int, live_refresh_s: float) -> float:
    from agent import Agent
    from agent.providers.scripted import ScriptedProvider
    from agent.ui import make_app

    text = " ".join(f"word{i % 97}" for i in range(words))
    with (
        tempfile.TemporaryDirectory() as tmp,
        Agent(cwd=Path(tmp), provider=ScriptedProvider([{"text": text}])) as agent,
    ):
        app = make_app(agent)
        async with app.run_test(size=(100, 30)) as pilot:
            app.transcript.live_refresh_s = live_refresh_s
            if live_refresh_s == 0:  # the baseline: redraw on every delta
                app.transcript._live_timer.stop()
                app.transcript._live_timer = None
            app.prompt_input.text = "go"
            start = time.perf_counter()
            await pilot.press("enter")
            await pilot.pause()
            while app.busy:
                await asyncio.sleep(0.01)
            await pilot.pause()
            return time.perf_counter() - start


def main() -> None:
    os.environ["GODWIT_HOME"] = tempfile.mkdtemp(prefix="godwit-bench-")
    sizes = [int(a) for a in sys.argv[1:]] or [500, 2000, 5000]
    print(f"{'words':>7} {'every delta (s)':>16} {'50 ms ticks (s)':>16} {'speed-up':>9}")
    for words in sizes:
        base = asyncio.run(one(words, 0.0))
        fast = asyncio.run(one(words, 0.05))
        print(f"{words:>7} {base:>16.2f} {fast:>16.2f} {base / fast:>8.1f}x")


if __name__ == "__main__":
    main()
