"""A minimal in-process Provider for the compaction and policy unit tests.

It implements the `agent.providers.base.Provider` protocol itself (no SDK involved); the tests
that go through real providers and HTTP live in test_providers.py.
"""

from __future__ import annotations

from agent.errors import ProviderError
from agent.events import TextDelta
from agent.messages import Message, TextBlock
from agent.providers.base import ModelRequest, ModelResponse, TokenUsage


class StubProvider:
    def __init__(
        self,
        reply: str = "## Task\nFix it.",
        *,
        name: str = "openai",
        context_window: int = 200_000,
        stop_reason: str = "end_turn",
        fail: bool = False,
        count: int | None | Exception = None,
    ) -> None:
        self.name = name
        self.model = "stub-model"
        self.context_window = context_window
        self.reply = reply
        self.stop_reason = stop_reason
        self.fail = fail
        self.count = count
        self.requests: list[ModelRequest] = []
        self.counted: list[ModelRequest] = []

    async def stream(self, request: ModelRequest):
        self.requests.append(request)
        if self.fail:
            raise ProviderError("HTTP 500 from the service", kind="api", status=500)
        yield TextDelta(text=self.reply[:5])
        yield ModelResponse(
            message=Message(role="assistant", content=[TextBlock(text=self.reply)]),
            stop_reason=self.stop_reason,
            usage=TokenUsage(input_tokens=1234, output_tokens=56),
            model=self.model,
        )

    async def count_tokens(self, request: ModelRequest) -> int | None:
        self.counted.append(request)
        if isinstance(self.count, Exception):
            raise self.count
        return self.count

    def cost(self, usage: TokenUsage) -> float:
        return 0.0
