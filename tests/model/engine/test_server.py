"""The continuous-batching server: concurrent requests decode in one batch and each gets exactly
the tokens it gets alone; cancellation, admission, failures and close never leave a waiter hanging."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest
import torch

import model
from model.engine import Engine, RequestTooLargeError, SamplingParams
from model.engine.server import Server, ServerClosed

from .helpers import prompt

WAIT = 60  # seconds any single wait may take before the test fails instead of hanging


@pytest.fixture(scope="module")
def net(tiny_dir):
    return model.load(tiny_dir, dtype=torch.float32)


class Recording(Engine):
    """An engine that logs what it ran: ("start", prompt length) per admission attempt,
    ("prefill", prompt length) per chunk, ("decode", batch)."""

    def __init__(self, *args, fail_decode_at: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.log: list[tuple[str, int]] = []
        self.fail_decode_at = fail_decode_at

    def start(self, prompt, params=None):
        self.log.append(("start", len(prompt)))
        return super().start(prompt, params)

    def prefill_next(self, seq, all_logits=False):
        self.log.append(("prefill", seq.prompt_len))
        return super().prefill_next(seq, all_logits)

    def decode(self, seqs, tokens):
        self.log.append(("decode", len(seqs)))
        if self.fail_decode_at is not None and len(self.batches) == self.fail_decode_at:
            raise RuntimeError("boom: the device fell over")
        return super().decode(seqs, tokens)

    @property
    def batches(self) -> list[int]:
        return [n for what, n in self.log if what == "decode"]


def make(net, **kw) -> Recording:
    return Recording(
        net,
        block_size=16,
        prefill_chunk=kw.pop("prefill_chunk", 32),
        max_cached_tokens=kw.pop("tokens", 2048),
        **kw,
    )


def alone(net, tokens: list[int], new: int) -> list[int]:
    """What one request generates by itself (a fresh engine, no server)."""
    engine = make(net)
    return [t for _, t in engine.generate([tokens], SamplingParams(max_new_tokens=new))]


def held(server: Server) -> threading.Event:
    """Park the worker (inside a `call`) until the returned event is set, so that the requests
    submitted meanwhile are all waiting when it next looks (deterministic batching)."""
    gate, parked = threading.Event(), threading.Event()

    def park() -> None:
        parked.set()
        gate.wait(WAIT)

    server.call(park)
    assert parked.wait(WAIT)
    return gate


def wait_until(cond, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


@pytest.mark.parametrize("n", [2, 3])
def test_concurrent_requests_decode_in_one_batch_and_equal_running_alone(net, n):
    lengths, new = [5, 40, 90][:n], [12, 9, 14][:n]
    prompts = [prompt(k, seed=k) for k in lengths]
    want = [alone(net, p, m) for p, m in zip(prompts, new)]
    engine = make(net)
    server = Server(engine)
    try:
        gate = held(server)
        reqs = [server.submit(p, SamplingParams(max_new_tokens=m)) for p, m in zip(prompts, new)]
        gate.set()
        assert [r.result(WAIT) for r in reqs] == want
    finally:
        server.close()
    sequential = sum(m - 1 for m in new)  # decode steps when each request runs by itself
    assert max(engine.batches) == n
    assert len(engine.batches) < sequential
    assert sum(engine.batches) == sequential == server.decode_rows
    assert sum(engine.pool.refs) == 0  # every block released (full ones stay cached)
    assert [r.prefilled + r.reused for r in reqs] == lengths
    assert [r.tokens for r in reqs] == [p + w for p, w in zip(prompts, want)]


def test_a_long_prefill_is_interleaved_with_the_running_decodes(net):
    short, long = prompt(10, seed=1), prompt(150, seed=2)
    engine = make(net)
    server = Server(engine)
    try:
        first = server.submit(short, SamplingParams(max_new_tokens=20))
        wait_until(lambda: first.output, "the short request's first token")
        second = server.submit(long, SamplingParams(max_new_tokens=3))
        assert first.result(WAIT) == alone(net, short, 20)
        assert second.result(WAIT) == alone(net, long, 3)
    finally:
        server.close()
    chunks = [i for i, (what, n) in enumerate(engine.log) if what == "prefill" and n == 150]
    assert len(chunks) == 5  # 150 tokens in chunks of 32
    for a, b in itertools.pairwise(chunks):
        assert ("decode", 1) in engine.log[a:b], "a prefill chunk ran without a decode step between"


def test_astream_from_asyncio_gather(net):
    prompts = [prompt(30, seed=7), prompt(70, seed=8)]
    want = [alone(net, p, 10) for p in prompts]
    engine = make(net)
    server = Server(engine)

    async def collect(req):
        return [t async for t in req.astream()]

    async def main():
        reqs = [server.submit(p, SamplingParams(max_new_tokens=10)) for p in prompts]
        return await asyncio.wait_for(asyncio.gather(*(collect(r) for r in reqs)), WAIT)

    try:
        assert asyncio.run(main()) == want
    finally:
        server.close()
    assert max(engine.batches) == 2


def test_cancel_mid_stream_frees_the_blocks_and_the_other_request_finishes(net):
    engine = make(net)
    server = Server(engine)
    other_prompt = prompt(50, seed=4)
    try:
        gate = held(server)
        doomed = server.submit(prompt(60, seed=3), SamplingParams(max_new_tokens=500))
        other = server.submit(other_prompt, SamplingParams(max_new_tokens=30))
        gate.set()
        wait_until(lambda: len(doomed.output) >= 3, "three tokens")
        doomed.cancel()
        assert doomed.result(WAIT) == doomed.output and len(doomed.output) < 500
        assert other.result(WAIT) == alone(net, other_prompt, 30)
    finally:
        server.close()
    assert sum(engine.pool.refs) == 0


def test_leaving_astream_early_cancels_the_request(net):
    engine = make(net)
    server = Server(engine)

    async def main():
        req = server.submit(prompt(20, seed=5), SamplingParams(max_new_tokens=500))
        async for _ in req.astream():
            break
        return req

    try:
        req = asyncio.run(main())
        req.result(WAIT)
        assert req.cancelled and len(req.output) < 500
    finally:
        server.close()
    assert sum(engine.pool.refs) == 0


def test_a_request_too_large_fails_clearly_while_another_succeeds(net):
    engine = make(net, tokens=256)
    server = Server(engine)
    fine = prompt(40, seed=6)
    try:
        big = server.submit(prompt(300, seed=5), SamplingParams(max_new_tokens=4))
        ok = server.submit(fine, SamplingParams(max_new_tokens=6))
        with pytest.raises(RequestTooLargeError, match="request needs 304 tokens"):
            big.result(WAIT)
        assert ok.result(WAIT) == alone(net, fine, 6)
    finally:
        server.close()


def test_a_request_waits_for_room_instead_of_failing(net):
    """256 cached tokens: the first request may take 13 blocks of 16, so the second (10 blocks)
    waits until the first finishes, then runs."""
    engine = make(net, tokens=256)
    server = Server(engine)
    a, b = prompt(100, seed=9), prompt(100, seed=10)
    try:
        gate = held(server)
        first = server.submit(a, SamplingParams(max_new_tokens=100))
        second = server.submit(b, SamplingParams(max_new_tokens=50))
        gate.set()
        assert first.result(WAIT) == alone(net, a, 100)
        assert second.result(WAIT) == alone(net, b, 50)
    finally:
        server.close()
    assert max(engine.batches) == 1  # never both at once: the cache holds only one of them
    # the second tried once while the first ran, and once more when the first freed its blocks
    assert engine.log.count(("start", 100)) == 3


def test_a_worker_exception_reaches_the_waiters_and_the_server_goes_on(net):
    engine = make(net, fail_decode_at=3)
    server = Server(engine)
    later = prompt(25, seed=12)
    try:
        gate = held(server)
        reqs = [
            server.submit(prompt(20, seed=s), SamplingParams(max_new_tokens=10)) for s in (1, 2)
        ]
        gate.set()
        for r in reqs:
            with pytest.raises(RuntimeError, match="boom"):
                r.result(WAIT)
        assert sum(engine.pool.refs) == 0
        engine.fail_decode_at = None
        assert server.submit(later, SamplingParams(max_new_tokens=5)).result(WAIT) == alone(
            net, later, 5
        )
    finally:
        server.close()


def test_a_dead_worker_fails_every_waiter_and_refuses_new_work(net):
    class Broken(Recording):
        def start(self, prompt, params=None):
            raise KeyError("a bug in admission")  # not an engine error: the loop itself dies

    server = Server(Broken(net, block_size=16, max_cached_tokens=512))
    req = server.submit(prompt(10), SamplingParams(max_new_tokens=3))
    with pytest.raises(ServerClosed, match="a bug in admission"):
        req.result(WAIT)
    with pytest.raises(ServerClosed, match="worker stopped"):
        server.submit(prompt(10))
    server.close()


def test_close_ends_requests_and_calls_in_flight(net):
    engine = make(net)
    server = Server(engine)
    running = server.submit(prompt(30, seed=13), SamplingParams(max_new_tokens=1500))
    wait_until(lambda: running.output, "the first token")
    gate = held(server)  # the worker is parked inside this call when close() comes
    waiting = server.submit(prompt(30, seed=14), SamplingParams(max_new_tokens=5))
    pending = server.call(len, [1, 2])
    closer = threading.Thread(target=server.close)
    closer.start()
    gate.set()
    closer.join(WAIT)
    assert not closer.is_alive()
    for req in (running, waiting):
        with pytest.raises(ServerClosed, match="closed"):
            req.result(WAIT)
    with pytest.raises(ServerClosed):
        pending.result(WAIT)
    with pytest.raises(ServerClosed):
        server.submit(prompt(5))
    assert sum(engine.pool.refs) == 0
