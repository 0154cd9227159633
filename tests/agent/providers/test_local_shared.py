"""Several `local:` providers in one process share one loaded model and decode in one batch; the
last one to close frees it."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import time

import pytest

pytest.importorskip("torch")

from agent import Agent
from agent.messages import Message
from agent.providers import local_models
from agent.providers.base import ModelRequest, ModelResponse
from agent.providers.local import LocalProvider

WAIT = 120  # seconds before a test fails rather than hangs


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    subprocess.run([sys.executable, "-m", "model.tiny", str(out)], check=True, capture_output=True)
    return out


def request(text: str) -> ModelRequest:
    return ModelRequest(system="Be brief.", messages=[Message.user(text)], max_tokens=24)


async def reply(provider, req: ModelRequest) -> ModelResponse:
    items = [item async for item in provider.stream(req)]
    assert isinstance(items[-1], ModelResponse)
    return items[-1]


def test_two_providers_share_one_model_and_stream_concurrently(checkpoint):
    a = LocalProvider(str(checkpoint), persist_kv=False)
    b = LocalProvider(str(checkpoint), persist_kv=False)
    assert a.net is b.net and a.shared is b.shared and a.shared.refs == 2
    server = a.shared.server
    reqs = [request("hello there"), request("write a haiku about godwits")]
    alone = [asyncio.run(reply(a, reqs[0])), asyncio.run(reply(b, reqs[1]))]
    steps, rows = server.decode_steps, server.decode_rows

    async def both():
        return await asyncio.wait_for(asyncio.gather(reply(a, reqs[0]), reply(b, reqs[1])), WAIT)

    together = asyncio.run(both())
    assert [r.message for r in together] == [r.message for r in alone]
    assert [r.usage.output_tokens for r in together] == [r.usage.output_tokens for r in alone]
    batched_rows, batched_steps = server.decode_rows - rows, server.decode_steps - steps
    assert batched_steps < batched_rows  # some steps decoded both replies at once
    a.close()
    assert a.shared in local_models.loaded() and a.shared.refs == 1
    assert asyncio.run(reply(b, reqs[0])).message == alone[0].message  # b still works
    b.close()
    b.close()  # idempotent
    assert a.shared not in local_models.loaded() and a.shared.refs == 0
    c = LocalProvider(str(checkpoint), persist_kv=False)
    assert c.net is not a.net  # loaded afresh
    c.close()


def test_other_load_options_get_their_own_model(checkpoint):
    a = LocalProvider(str(checkpoint), persist_kv=False)
    b = LocalProvider(str(checkpoint), persist_kv=False, max_cached_tokens=1024)
    try:
        assert a.net is not b.net and a.shared.server is not b.shared.server
    finally:
        a.close()
        b.close()


def test_a_provider_dropped_without_close_lets_go_of_the_model(checkpoint):
    provider = LocalProvider(str(checkpoint), persist_kv=False)
    shared = provider.shared
    del provider
    gc.collect()
    deadline = time.monotonic() + WAIT
    while shared in local_models.loaded():
        assert time.monotonic() < deadline, "the model was not released"
        time.sleep(0.01)
    assert shared.refs == 0


def test_two_sdk_agents_on_one_local_model_run_concurrently(checkpoint, tmp_path):
    settings = {"max_tokens": 6, "max_turns": 1, "checkpoints": False}
    agents = [Agent(cwd=tmp_path, model=f"local:{checkpoint}", settings=settings) for _ in range(2)]

    async def run_both():
        return await asyncio.wait_for(
            asyncio.gather(agents[0].arun("hello"), agents[1].arun("say hi")), WAIT
        )

    results = asyncio.run(run_both())
    assert all(r.num_turns >= 1 and r.stop_reason in ("max_tokens", "end_turn") for r in results)
    assert all(r.usage["output_tokens"] > 0 for r in results)
    shared = agents[0].runtime().provider.shared
    assert agents[1].runtime().provider.shared is shared and shared.refs == 2
    for agent in agents:
        agent.close()
    assert shared not in local_models.loaded()


def test_an_agent_closes_only_the_provider_it_built(checkpoint, tmp_path):
    mine = LocalProvider(str(checkpoint), persist_kv=False)
    settings = {"max_tokens": 4, "max_turns": 1, "checkpoints": False}
    with Agent(cwd=tmp_path, provider=mine, settings=settings) as agent:
        agent.run("hi")
    assert mine.shared in local_models.loaded()  # the caller's provider is the caller's to close
    assert asyncio.run(reply(mine, request("still there?"))).usage.output_tokens > 0
    mine.close()
    assert mine.shared not in local_models.loaded()


def test_a_resumed_conversation_reloads_its_kv_while_another_agent_decodes(checkpoint):
    long_request = ModelRequest(
        system="Be brief. " * 40, messages=[Message.user("hi")], max_tokens=4
    )
    first = LocalProvider(str(checkpoint))
    assert asyncio.run(reply(first, long_request)).stop_reason != "tool_use"  # saved at the end
    first.close()  # the model is freed: the next providers start from an empty cache
    busy = LocalProvider(str(checkpoint), persist_kv=False)
    resumed = LocalProvider(str(checkpoint))
    assert busy.shared is resumed.shared

    async def both():
        return await asyncio.wait_for(
            asyncio.gather(reply(busy, request("keep talking")), reply(resumed, long_request)),
            WAIT,
        )

    other, again = asyncio.run(both())
    assert other.usage.output_tokens > 0
    assert again.usage.cache_read_input_tokens >= 64  # restored from disk, not re-prefilled
    busy.close()
    resumed.close()
