"""`local:PATH`: a DeepSeek-V3.2-family checkpoint run in this process (package `model/`).

The conversation is rendered with the checkpoint's chat template (DeepSeek-V3.2's own encoding
when it ships none), generated greedily over a preallocated cache in a worker thread, and parsed
back as it streams: reasoning, text and DSML tool calls. Malformed tool-call markup becomes a
tool call with `input_error`, which the loop answers with an error the model can read.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from agent.errors import ConfigError, ProviderError
from agent.events import TextDelta, ThinkingDelta
from agent.messages import Message, TextBlock, ThinkingBlock, ToolUseBlock
from agent.providers.base import ModelRequest, ModelResponse, StreamItem, TokenUsage
from agent.providers.convert import openai_messages

# Prompt tokens run through the model per forward call while prefilling.
PREFILL_CHUNK = 1024


class LocalProvider:
    """Greedy generation with the in-process model; one request at a time."""

    name = "local"

    def __init__(
        self,
        path: str,
        *,
        device: str | None = None,
        thinking: bool = True,
        max_new_tokens: int = 4096,
    ) -> None:
        folder = Path(path).expanduser()
        if not (folder / "config.json").is_file():
            raise ConfigError(f"local:{path} is not a checkpoint folder (no config.json there).")
        import torch

        import model as dsv32
        from model.tokenizer import Tokenizer

        self.model = f"local:{folder}"
        self.thinking = thinking
        self.max_new_tokens = max_new_tokens
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device != "cpu" else torch.float32
        try:
            self.tokenizer = Tokenizer(folder)
            self.net = dsv32.load(folder, device=self.device, dtype=dtype)
        except dsv32.ModelError as exc:
            raise ConfigError(f"Cannot load local:{path}: {exc}") from exc
        self.net.eval()
        self.context_window = int(self.net.cfg.max_position_embeddings)
        self._lock = threading.Lock()

    def _prompt(self, request: ModelRequest) -> str:
        messages = openai_messages(request.system, request.messages, send_reasoning=True)
        if not messages or messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": ""})
        if request.tools:
            messages[0]["tools"] = [t.openai_spec() for t in request.tools]
        return self.tokenizer.render_prompt(messages, thinking=self.thinking)

    def _ids(self, request: ModelRequest) -> list[int]:
        ids = self.tokenizer.encode(self._prompt(request))
        if len(ids) >= self.context_window:
            raise ProviderError(
                f"The prompt has {len(ids)} tokens; the local model's window is "
                f"{self.context_window}.",
                kind="context",
            )
        return ids

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamItem]:
        from model.parsing import ParseError, ReasoningDelta, StreamParser, ToolCall
        from model.parsing import TextDelta as PText

        ids = self._ids(request)
        budget = min(request.max_tokens, self.max_new_tokens, self.context_window - len(ids))
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()
        worker = threading.Thread(
            target=self._generate, args=(ids, budget, queue, loop, stop), daemon=True
        )
        worker.start()
        parser = StreamParser(thinking=self.thinking)
        thinking, text, calls, errors = [], [], [], []
        produced, finished = 0, False
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise ProviderError(f"Local generation failed: {item}", kind="api") from item
                if item is None:
                    events, finished = parser.finish(), True
                else:
                    produced += item[0]
                    events = parser.feed(item[1])
                for event in events:
                    if isinstance(event, ReasoningDelta):
                        thinking.append(event.text)
                        yield ThinkingDelta(text=event.text)
                    elif isinstance(event, PText):
                        text.append(event.text)
                        yield TextDelta(text=event.text)
                    elif isinstance(event, ToolCall):
                        calls.append(event)
                    elif isinstance(event, ParseError):
                        errors.append(event)
                if finished:
                    break
        finally:
            stop.set()
        blocks: list[Any] = []
        if thinking:
            blocks.append(ThinkingBlock(thinking="".join(thinking)))
        if text:
            blocks.append(TextBlock(text="".join(text)))
        for call in calls:
            try:
                args = json.loads(call.arguments)
                blocks.append(ToolUseBlock(id=call.id, name=call.name, input=args))
            except json.JSONDecodeError as exc:
                blocks.append(
                    ToolUseBlock(
                        id=call.id,
                        name=call.name,
                        input={},
                        input_error=f"{exc}: {call.arguments[:200]}",
                    )
                )
        for n, err in enumerate(errors):
            blocks.append(
                ToolUseBlock(
                    id=f"call_malformed_{n}",
                    name="invalid_tool_call",
                    input={},
                    input_error=f"{err.message}: {err.raw[:200]}",
                )
            )
        hit_limit = produced >= budget
        stop_reason = "tool_use" if calls or errors else "max_tokens" if hit_limit else "end_turn"
        yield ModelResponse(
            message=Message(role="assistant", content=blocks),
            stop_reason=stop_reason,
            model=self.model,
            usage=TokenUsage(input_tokens=len(ids), output_tokens=produced),
        )

    def _generate(
        self,
        ids: list[int],
        budget: int,
        queue: asyncio.Queue,
        loop: asyncio.AbstractEventLoop,
        stop: threading.Event,
    ) -> None:
        """Worker thread: greedy decode, pushing (n_tokens, text) pieces, then None."""
        import torch

        from model.generate import decode_step

        def put(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        try:
            with self._lock, torch.inference_mode():
                prompt = torch.tensor([ids], dtype=torch.long, device=self.device)
                cache = self.net.new_cache(1, len(ids) + budget)
                # Chunked prefill: attention scores stay (chunk, T), not (T, T).
                for start in range(0, len(ids) - PREFILL_CHUNK, PREFILL_CHUNK):
                    if stop.is_set():
                        break
                    self.net(prompt[:, start : start + PREFILL_CHUNK], start=start, cache=cache)
                last = max(0, (len(ids) - 1) // PREFILL_CHUNK * PREFILL_CHUNK)
                logits = self.net(prompt[:, last:], start=last, cache=cache)[:, -1]
                decoder = self.tokenizer.stream()
                eos = self.tokenizer.eos_id
                for step in range(budget):
                    if stop.is_set():
                        break
                    token = logits.argmax(-1)
                    tid = int(token[0])
                    if eos is not None and tid == eos:
                        break
                    put((1, decoder.push(tid)))
                    if step + 1 < budget:
                        logits = decode_step(self.net, token, len(ids) + step, cache)
                put((0, decoder.flush()))
            put(None)
        except Exception as exc:  # noqa: BLE001 - reported to the loop as a provider error
            put(exc)

    async def count_tokens(self, request: ModelRequest) -> int | None:
        return len(self.tokenizer.encode(self._prompt(request)))

    def cost(self, usage: TokenUsage) -> float:
        return 0.0
