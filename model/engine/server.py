"""Continuous batching: one worker thread runs an `Engine` for every request of the process.

    server = Server(engine)
    request = server.submit(prompt_ids, SamplingParams(max_new_tokens=256))
    async for token in request.astream():  # or `for token in request:` from a thread
        ...
    server.close()

Each turn of the worker admits waiting requests in order (one whose cache blocks are not free yet
waits for running ones to finish), runs prefill chunks of new requests up to one chunk's worth of
tokens, then ONE decode step over every running sequence, samples all of them with one host read
and hands each request its token. A long prompt therefore delays the others' streams by a chunk
per token, not by its whole prefill; several agents on one model decode in one batch instead of
queueing behind each other.

The worker is the only thread that touches the engine (its caches, block pool and CUDA graphs):
other work on it, such as loading or saving persisted KV, goes through `call`, which runs between
turns. Once a server owns an engine, nothing else may call the engine directly.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from typing import Any

import torch

from model.engine.cache import blocks_for
from model.engine.engine import Engine, Sequence
from model.engine.errors import CacheFullError, EngineError, RequestTooLargeError
from model.engine.sampling import SamplingParams

log = logging.getLogger(__name__)


class ServerClosed(EngineError):
    """The server was closed (or its worker stopped) with this request or call in flight."""


class Request:
    """One submitted prompt: its tokens as they are sampled, then its counts.

    `output` grows as tokens arrive; after the end, `reused` / `prefilled` say how much of the
    prompt came from the prefix cache, and `tokens` (prompt + output) is what persistence saves.
    """

    def __init__(self, server: Server, prompt: list[int], params: SamplingParams):
        self.prompt, self.params = list(prompt), params
        self.output: list[int] = []
        self.tokens: list[int] = []
        self.reused = self.prefilled = 0
        self.error: BaseException | None = None
        self.cancelled = False
        self._server = server
        self._cond = threading.Condition()
        self._done = False
        self._wake: Callable[[], None] | None = None
        # the worker's own state
        self.seq: Sequence | None = None
        self.next_token: int | None = None  # sampled, to be fed to the next decode step

    @property
    def done(self) -> bool:
        return self._done

    def cancel(self) -> None:
        """Stop generating; the request ends at the worker's next turn and frees its blocks."""
        self.cancelled = True
        self._server._poke()

    def result(self, timeout: float | None = None) -> list[int]:
        """Wait for the end; the output tokens, or the request's error raised."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._done, timeout):
                raise TimeoutError(f"the request did not finish within {timeout} s")
        if self.error is not None:
            raise self.error
        return self.output

    def __iter__(self) -> Iterator[int]:
        """Tokens as they are sampled (blocking); raises the request's error at the end."""
        i = 0
        while True:
            with self._cond:
                self._cond.wait_for(lambda i=i: len(self.output) > i or self._done)
                new, done = self.output[i:], self._done
            i += len(new)
            yield from new
            if done:
                if self.error is not None:
                    raise self.error
                return

    async def astream(self) -> AsyncIterator[int]:
        """Tokens as they are sampled, for an asyncio consumer; leaving early cancels."""
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()

        def wake() -> None:
            try:
                loop.call_soon_threadsafe(ready.set)
            except RuntimeError:  # the consumer's loop is closed: nobody is listening
                pass

        with self._cond:
            self._wake = wake
        i = 0
        try:
            while True:
                ready.clear()
                with self._cond:
                    new, done = self.output[i:], self._done
                i += len(new)
                for tok in new:
                    yield tok
                if done:
                    if self.error is not None:
                        raise self.error
                    return
                await ready.wait()
        finally:
            with self._cond:
                self._wake = None
            if not self._done:
                self.cancel()

    # -- called by the worker --------------------------------------------------------------------

    def _emit(self, token: int) -> None:
        with self._cond:
            self.output.append(token)
            self._cond.notify_all()
            wake = self._wake
        if wake is not None:
            wake()

    def _finish(self, error: BaseException | None = None) -> None:
        with self._cond:
            if self._done:
                return
            self.error, self._done = error, True
            self._cond.notify_all()
            wake = self._wake
        if wake is not None:
            wake()


class Server:
    """Serves one `Engine` from a worker thread; `submit` and `call` are safe from any thread."""

    def __init__(self, engine: Engine, name: str = "godwit-engine"):
        self.engine = engine
        self.decode_steps = 0  # decode forward calls run
        self.decode_rows = 0  # sequences decoded over those calls (rows / steps = mean batch)
        self._cond = threading.Condition()
        self._waiting: deque[Request] = deque()
        self._calls: deque[tuple[Callable[..., Any], tuple, Future]] = deque()
        self._closed = False
        self._failure: BaseException | None = None
        self._blocked: Request | None = None  # the head of the queue, waiting for blocks
        self._prefilling: list[Request] = []  # admitted, prompt not fully in the cache yet
        self._running: list[Request] = []  # decoding; each has a next_token to feed
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, prompt: list[int], params: SamplingParams | None = None) -> Request:
        """Queue a prompt; its tokens arrive on the returned request."""
        req = Request(self, prompt, params or SamplingParams())
        with self._cond:
            self._check_open()
            self._waiting.append(req)
            self._cond.notify_all()
        return req

    def call(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Run `fn(*args)` on the worker between turns (engine work outside generation, such as
        persisted-KV load and save); its result or exception comes back on the future."""
        fut: Future = Future()
        with self._cond:
            self._check_open()
            self._calls.append((fn, args, fut))
            self._cond.notify_all()
        return fut

    def close(self) -> None:
        """Stop the worker; requests and calls still in flight end with `ServerClosed`."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _check_open(self) -> None:
        if self._failure is not None:
            raise ServerClosed(f"the engine's worker stopped: {self._failure}") from self._failure
        if self._closed:
            raise ServerClosed("the engine server is closed")

    def _poke(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # -- the worker ------------------------------------------------------------------------------

    def _run(self) -> None:
        failure: BaseException | None = None
        try:
            if self.engine.device.type == "cuda":
                torch.cuda.set_device(self.engine.device)
            with torch.inference_mode():
                while self._turn():
                    pass
        except BaseException as exc:  # a dead worker must still end every waiter
            log.exception("the engine's worker stopped")
            failure = exc
        finally:
            self._shutdown(failure)

    def _turn(self) -> bool:
        with self._cond:
            self._cond.wait_for(
                lambda: (
                    self._closed
                    or self._waiting
                    or self._calls
                    or self._prefilling
                    or self._running
                )
            )
            if self._closed:
                return False
            calls = list(self._calls)
            self._calls.clear()
            for req in [r for r in self._waiting if r.cancelled]:
                self._waiting.remove(req)
                req._finish()
        for fn, args, fut in calls:
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn(*args))
                except Exception as exc:  # noqa: BLE001 - the caller gets it on the future
                    fut.set_exception(exc)
        for req in [r for r in self._prefilling + self._running if r.cancelled]:
            self._retire(req)
        self._admit()
        ready = self._prefill()
        self._decode(ready)
        return True

    def _admit(self) -> None:
        """Start waiting requests in order while their cache blocks (the prompt's, and what their
        output may still take) are free on top of what the running ones may still take."""
        e = self.engine
        while True:
            with self._cond:
                if not self._waiting or self._waiting[0] is self._blocked:
                    return  # nothing new to admit, or no block freed since the head last tried
                req = self._waiting[0]
            busy = bool(self._prefilling or self._running)
            try:
                seq = e.start(req.prompt, req.params)
            except CacheFullError as exc:
                if busy:
                    self._blocked = req  # it fits once running sequences finish
                    return
                self._pop_waiting()._finish(exc)
                continue
            except (EngineError, ValueError) as exc:  # too large for the planner, empty prompt
                self._pop_waiting()._finish(exc)
                continue
            need, owed = self._owed(seq), sum(self._owed(r.seq) for r in self._busy())
            if need + owed > e.pool.available:
                e.release(seq)
                if busy:
                    self._blocked = req
                    return
                self._pop_waiting()._finish(
                    RequestTooLargeError(
                        f"request needs {need} more cache blocks of {e.block_size} tokens "
                        f"({seq.prompt_len} prompt + {req.params.max_new_tokens} to generate) but "
                        f"only {e.pool.available} are free with nothing else running. Shorten the "
                        f"conversation or lower max_new_tokens, or give the cache more memory."
                    )
                )
                continue
            self._pop_waiting()
            req.seq = seq
            self._prefilling.append(req)

    def _prefill(self) -> list[tuple[Request, torch.Tensor]]:
        """Prefill chunks of admitted requests, one chunk's worth of tokens this turn (at least one
        chunk); the requests whose prompt is now complete, with their last logits `(vocab,)`."""
        e, done_tokens, ready = self.engine, 0, []
        while self._prefilling:
            req = self._prefilling[0]
            seq = req.seq
            n = min(len(seq.tokens) - seq.computed, e.prefill_chunk)
            if done_tokens and done_tokens + n > e.prefill_chunk:
                break
            try:
                logits = e.prefill_next(seq)
            except Exception as exc:  # noqa: BLE001 - e.g. out of memory: this request fails
                self._prefilling.pop(0)
                self._fail(req, exc)
                continue
            done_tokens += n
            if seq.computed == len(seq.tokens):
                self._prefilling.pop(0)
                if req.params.max_new_tokens == 0:
                    self._retire(req)
                else:
                    ready.append((req, logits[-1]))
        return ready

    def _decode(self, ready: list[tuple[Request, torch.Tensor]]) -> None:
        """One decode step over the running requests, then one sampling of it and of the just
        prefilled requests' first tokens."""
        e, rows = self.engine, []
        feed, self._running = self._running, []
        if feed:
            try:
                rows.append(e.decode([r.seq for r in feed], [r.next_token for r in feed]))
                self.decode_steps += 1
                self.decode_rows += len(feed)
            except Exception as exc:  # noqa: BLE001 - every sequence of the batch fails with it
                for req in feed:
                    self._fail(req, exc)
                feed = []
        batch = feed + [r for r, _ in ready]
        if not batch:
            return
        if ready:
            rows.append(torch.stack([logits for _, logits in ready]))
        try:
            logits = rows[0] if len(rows) == 1 else torch.cat(rows)  # (B, vocab)
            picked = e.sample_next([r.seq for r in batch], logits)
        except Exception as exc:  # noqa: BLE001
            for req in batch:
                self._fail(req, exc)
            return
        for req, tok in zip(batch, picked):
            if tok is not None:
                req._emit(tok)
            if req.seq.finished:
                self._retire(req)
            else:
                req.next_token = tok
                self._running.append(req)

    def _busy(self) -> list[Request]:
        return self._prefilling + self._running

    def _owed(self, seq: Sequence) -> int:
        """Blocks `seq` may still allocate (prompt not yet prefilled, and its output budget)."""
        need = blocks_for(seq.prompt_len + seq.params.max_new_tokens, self.engine.block_size)
        return max(0, need - len(seq.blocks))

    def _pop_waiting(self) -> Request:
        with self._cond:
            return self._waiting.popleft()

    def _retire(self, req: Request) -> None:
        """End a request normally (finished or cancelled): free its blocks (full ones stay in the
        prefix cache) and publish its counts."""
        self._drop(req)
        seq = req.seq
        req.reused, req.prefilled, req.tokens = seq.reused, seq.prefilled, list(seq.tokens)
        req._finish()

    def _fail(self, req: Request, exc: BaseException) -> None:
        self._drop(req)
        req._finish(exc)

    def _drop(self, req: Request) -> None:
        self._blocked = None  # blocks are freed: the head of the queue may fit now
        for queue in (self._prefilling, self._running):
            if req in queue:
                queue.remove(req)
        if req.seq is not None and req.seq.blocks:
            self.engine.release(req.seq)

    def _shutdown(self, failure: BaseException | None) -> None:
        with self._cond:
            self._closed = True
            self._failure = failure
            waiting, calls = list(self._waiting), list(self._calls)
            self._waiting.clear()
            self._calls.clear()
        reason = (
            ServerClosed(f"the engine's worker stopped: {failure}")
            if failure is not None
            else ServerClosed("the engine server was closed while this request was in flight")
        )
        for req in waiting + self._busy():
            self._fail(req, reason)
        for _, _, fut in calls:
            if fut.set_running_or_notify_cancel():
                fut.set_exception(reason)
