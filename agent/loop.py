"""The agent loop: run → step → query the model → execute tool calls. Reads top to bottom.

`run` handles one user prompt (a turn) until the model ends its turn, `max_turns` model calls
were made, a model call fails for good, or the user interrupts (task cancellation, which `query`
turns into a TurnInterrupted carrying the partial reply). Whatever happens, the turn ends with a
TurnEnd event and the log is synced.
"""

from __future__ import annotations

import asyncio

from agent import events as ev
from agent.command_hooks import turns
from agent.errors import ProviderError, TurnInterrupted
from agent.execute import execute
from agent.messages import Message, TextBlock
from agent.providers.base import ModelRequest, ModelResponse
from agent.runtime import Runtime

# Stop reasons after which the model has more to say if we call it again.
CONTINUE = {"tool_use", "pause_turn"}


async def run(rt: Runtime, prompt: str, *, max_calls: int | None = None) -> ev.TurnEnd:
    """Handle one user prompt (one turn) with at most `max_calls` model calls (the
    `--max-turns` flag and setting, named as in Claude Code); returns the TurnEnd event."""
    turn = rt.session.conversation.turns + 1
    await rt.sync_mcp()
    rt.watch_provider()
    hooked = await turns.before_prompt(rt, prompt, first=not rt.started, resumed=rt.resumed)
    rt.started, rt.stop_requested = True, None
    if hooked.blocked or hooked.stop:
        # Claude Code drops a prompt its UserPromptSubmit hook blocks: nothing reaches the model.
        why = hooked.blocked or hooked.stop
        await rt.record(ev.Error(message=f"Prompt not sent: {why}", kind="hook"))
        end = await rt.record(ev.TurnEnd(reason="blocked", turns=0, result=why), sync=True)
        return end  # type: ignore[return-value]
    # The turn's checkpoint is logged before its prompt, so rewinding to it restores the
    # conversation as it was before the prompt was sent.
    await rt.checkpoint(turn, prompt, "turn_start")
    await rt.record(ev.UserMessage(text=hooked.text, turn=turn), sync=True)
    calls = continuations = 0
    try:
        while True:
            if max_calls is not None and calls >= max_calls:
                return await _end(rt, "max_turns", calls)
            calls += 1
            stop = await step(rt, turn)
            if rt.stop_requested:
                await rt.record(ev.Error(message=rt.stop_requested, kind="hook"))
                return await _end(rt, "stopped_by_hook", calls)
            if stop in CONTINUE:
                continue
            feedback = await turns.after_stop(rt, continuations) if stop == "end_turn" else None
            if feedback is not None:
                # A Stop hook sends the model back to work with its reason.
                continuations += 1
                await rt.record(ev.UserMessage(text=feedback, turn=turn), sync=True)
                continue
            return await _end(rt, stop or "end_turn", calls)
    except TurnInterrupted as stop:
        if stop.partial is not None:
            await rt.record(
                ev.AssistantMessage(
                    message=stop.partial,
                    stop_reason="interrupted",
                    model=rt.provider.model,
                    turn=turn,
                ),
                sync=True,
            )
        return await _end(rt, "interrupted", calls)
    except asyncio.CancelledError:
        # Interrupted while a tool ran: execute() already recorded its interrupted result.
        return await _end(rt, "interrupted", calls)
    except ProviderError as exc:
        await rt.record(ev.Error(message=str(exc), kind=exc.kind))
        return await _end(rt, "error", calls)


async def step(rt: Runtime, turn: int) -> str | None:
    """One model call and the tool calls it asked for; returns the stop reason."""
    await rt.sync_mcp()
    request = await rt.request()
    response = await query(rt, turn, request)
    await rt.record(
        ev.AssistantMessage(
            message=response.message,
            stop_reason=response.stop_reason,
            model=response.model,
            turn=turn,
        ),
        sync=True,
    )
    await rt.usage(response.usage, response.model)
    if rt.context is not None:
        await rt.context.observe(rt, request, response)
    uses = response.message.tool_uses()
    for block in uses:
        await execute(rt, block, turn)
    if uses:
        # Every call was answered; the model decides what comes next, even after max_tokens
        # (a call cut off by max_tokens was answered with an error it can read).
        return "tool_use"
    if (
        response.stop_reason == "model_context_window_exceeded"
        and rt.context is not None
        and await rt.context.recover_window(rt)
    ):
        return "pause_turn"
    return response.stop_reason


async def query(rt: Runtime, turn: int, request: ModelRequest) -> ModelResponse:
    """Stream one model call, passing deltas on. An interrupt keeps what streamed so far."""
    text: list[str] = []
    thinking: list[str] = []
    try:
        async for item in rt.provider.stream(request):
            if isinstance(item, ModelResponse):
                return item
            if isinstance(item, ev.Retry):
                text.clear()
                thinking.clear()
            elif isinstance(item, ev.TextDelta):
                text.append(item.text)
            elif isinstance(item, ev.ThinkingDelta):
                thinking.append(item.text)
            await rt.record(item)
    except asyncio.CancelledError:
        await _charge_interrupted(rt, request, "".join(thinking) + "".join(text))
        raise TurnInterrupted(_partial("".join(thinking), "".join(text))) from None
    raise ProviderError("The model's reply ended without a final message.", kind="incomplete")


def _partial(thinking: str, text: str) -> Message | None:
    """What an interrupted reply keeps. Unsigned thinking cannot be sent back to Anthropic, so
    the text is kept, and thinking alone only leaves a note."""
    if not text and not thinking:
        return None
    blocks = [TextBlock(text=text + "\n[interrupted]")] if text else []
    if thinking and not text:
        blocks = [TextBlock(text="[interrupted while thinking]")]
    return Message(role="assistant", content=blocks)


async def _charge_interrupted(rt: Runtime, request: ModelRequest, streamed: str) -> None:
    # An interrupted call is billed all the same, but its usage never arrives: count an
    # estimate (marked as one) so the session's tokens and cost do not undercount.
    from agent.context.tokens import TokenCounter

    counter = getattr(getattr(rt.context, "policy", None), "counter", None) or TokenCounter()
    usage = ev.TokenUsage(
        input_tokens=counter.estimate_request(request.system, request.tools, request.messages),
        output_tokens=counter.estimate_text(streamed) if streamed else 0,
    )
    await rt.usage(usage, rt.provider.model, estimated=True)


async def _end(rt: Runtime, reason: str, calls: int) -> ev.TurnEnd:
    result = ""
    for event in reversed(rt.session.events):
        if isinstance(event, ev.AssistantMessage):
            result = event.message.text()
            break
        if isinstance(event, ev.UserMessage):
            break
    end = await rt.record(ev.TurnEnd(reason=reason, turns=calls, result=result), sync=True)
    rt.durable()
    return end  # type: ignore[return-value]
