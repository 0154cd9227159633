"""Benchmark: what the providers cost on top of the bare SDKs.

    python -m tests.agent.providers.bench_providers

Prints two tables, each with its same-run baseline:
1. start-up: importing the provider factory in a fresh interpreter, against importing the SDKs
   (the factory must not pay for them: `godwit --help` stays fast);
2. streaming: seconds per streamed event through the provider, against iterating the same
   stream with the bare SDK, both from the fake server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def _import_seconds(statement: str, runs: int = 5) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
        )
        times.append(float(out.stdout.strip()))
    return statistics.median(times)


def startup_table() -> None:
    rows = [
        ("import anthropic (baseline)", "import anthropic"),
        ("import openai (baseline)", "import openai"),
        ("import pydantic (floor: every module needs it)", "import pydantic"),
        (
            "import agent.providers + parse_spec",
            "import agent.providers as p; p.parse_spec('anthropic')",
        ),
    ]
    print("| what | median of 5, ms |\n|---|---|")
    for label, statement in rows:
        print(f"| {label} | {_import_seconds(statement) * 1000:.0f} |")


async def _stream_table(events: int, repeats: int) -> None:
    import anthropic
    import openai

    from agent.messages import Message
    from agent.providers.anthropic import AnthropicProvider
    from agent.providers.base import ModelRequest
    from agent.providers.openai_compat import OpenAICompatProvider
    from tests.fakes.llm_server import FakeLLMServer
    from tests.fakes.replies import say

    text = "x" * events  # one character per event
    req = ModelRequest(system="s", messages=[Message.user("hi")], max_tokens=100)
    raw_body = {
        "model": "claude-sonnet-5-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with FakeLLMServer() as server:
        sdk = anthropic.AsyncAnthropic(api_key="k", base_url=server.url, max_retries=0)
        osdk = openai.AsyncOpenAI(api_key="k", base_url=server.openai_url, max_retries=0)
        ours = AnthropicProvider("claude-sonnet-5-5", api_key="k", base_url=server.url)
        oours = OpenAICompatProvider("m", api_key="k", base_url=server.openai_url)

        async def bare_anthropic() -> None:
            async for _ in await sdk.messages.create(**raw_body, stream=True):
                pass

        async def bare_openai() -> None:
            stream = await osdk.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            async for _ in stream:
                pass

        async def provider(p) -> None:
            async for _ in p.stream(req):
                pass

        cases = [
            ("anthropic SDK, bare iteration (baseline)", bare_anthropic),
            ("AnthropicProvider.stream", lambda: provider(ours)),
            ("openai SDK, bare iteration (baseline)", bare_openai),
            ("OpenAICompatProvider.stream", lambda: provider(oours)),
        ]
        print(f"\n| what ({events} text events) | median of {repeats}, s | us per event |")
        print("|---|---|---|")
        for label, run in cases:
            times = []
            for _ in range(repeats):
                server.push(say(text, text_chunk=1))
                started = time.perf_counter()
                await run()
                times.append(time.perf_counter() - started)
            median = statistics.median(times)
            print(f"| {label} | {median:.3f} | {median / events * 1e6:.0f} |")


def main() -> None:
    os.environ.setdefault("GODWIT_HOME", str(Path("/tmp/godwit-bench-home")))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    startup_table()
    asyncio.run(_stream_table(events=2000, repeats=5))


if __name__ == "__main__":
    main()
