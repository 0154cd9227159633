"""Context editing and compaction wired into a live session (the policy is in agent/context.py).

Before each model call: the policy makes the view to send (client clearing, or Anthropic's
context_management body); a clearing step is logged; when the window is nearly full, the
conversation is compacted first. After the call: what the server cleared is logged. The log
always keeps everything, so rewind and resume are unaffected.
"""

from __future__ import annotations

from typing import Any

from agent import events as ev
from agent.context.compaction import CompactionResult, compact_or_error
from agent.context.policy import ContextPolicy
from agent.context.settings import ContextSettings
from agent.providers.base import ModelRequest, ModelResponse
from agent.settings import Settings


class ContextRuntime:
    """One per session: the policy plus the session-facing steps the loop calls."""

    def __init__(self, settings: ContextSettings, provider: Any) -> None:
        self.settings = settings
        counter = None
        tokenizer = getattr(provider, "tokenizer", None)
        if tokenizer is not None:
            # A local model counts with its own tokenizer instead of the byte heuristic.
            from agent.context.tokens import TokenCounter

            counter = TokenCounter(lambda text: len(tokenizer.encode(text)))
        self.policy = ContextPolicy(settings, provider, counter=counter)
        # The turn in which automatic compaction last failed: not retried on every call of it.
        self._failed_turn: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings, provider: Any) -> ContextRuntime:
        """The manager for a session's settings (already validated when they were read)."""
        return cls(settings.context, provider)

    def restore(self, events: list[ev.Event]) -> None:
        self.policy.restore(events)

    async def prepare(self, rt, request: ModelRequest) -> ModelRequest:
        """The request to send now; compacts first when the window is nearly full."""
        if not self.settings.enabled and not self.settings.auto_compact:
            return request
        prepared = await self.policy.prepare(request)
        turn = rt.session.conversation.turns
        if prepared.compact and self._failed_turn != turn:
            if await self._compact(rt, "auto", None):
                prepared = await self.policy.prepare(rt.full_request())
            else:
                self._failed_turn = turn
        if prepared.event is not None:
            await rt.record(prepared.event, sync=True)
        if not self.settings.enabled:
            return request.model_copy(update={"context_management": None})
        return prepared.request

    async def observe(self, rt, sent: ModelRequest, response: ModelResponse) -> None:
        event = self.policy.observe(sent, response)
        if event is not None:
            await rt.record(event, sync=True)

    async def recover_window(self, rt) -> bool:
        """The model said the window overflowed: compact once and let the loop retry."""
        return await self._compact(rt, "auto", None)

    async def _compact(self, rt, trigger: str, instructions: str | None) -> bool:
        messages, seqs = rt.session.conversation.message_seqs()
        if not self.can_compact(messages):
            return False
        hooks = getattr(rt, "hooks_of_session", None)
        if hooks is not None and hooks.has("PreCompact"):
            from agent.command_hooks import turns

            # Claude Code's PreCompact: seen before the summary is made, cannot stop it.
            await turns.report(rt, await hooks.pre_compact(trigger, instructions or ""))
        if hasattr(rt, "watch_provider"):
            rt.watch_provider()
        # A summary call can take a minute: say so while it runs, and when it is done.
        await rt.record(
            ev.Progress(task="compaction", message="Compacting the conversation…", total=1)
        )
        try:
            outcome = await self._summarise(rt, messages, instructions)
        finally:
            await rt.record(
                ev.Progress(
                    task="compaction",
                    message="Compacting the conversation: done",
                    done=1,
                    total=1,
                    finished=True,
                )
            )
        if isinstance(outcome, ev.Error):
            await rt.record(outcome, sync=True)
            return False
        assert isinstance(outcome, CompactionResult)
        boundary = seqs[outcome.cut_index] if outcome.cut_index < len(seqs) else None
        if boundary is None:
            boundary = rt.session.log.next_seq
        await rt.usage(outcome.usage, outcome.model or rt.provider.model)
        await rt.record(
            ev.Compaction(
                summary=outcome.summary,
                boundary_seq=boundary,
                tokens_before=outcome.tokens_before,
                tokens_after=outcome.tokens_after,
                trigger=trigger,
            ),
            sync=True,
        )
        return True

    async def _summarise(self, rt, messages, instructions: str | None):
        return await compact_or_error(
            rt.provider,
            messages,
            keep_last_turns=self.settings.compact_keep_last_turns,
            keep_tokens=int(self.policy.window * self.settings.compact_keep_fraction) or None,
            instructions=instructions,
            counter=self.policy.counter,
        )

    def can_compact(self, messages) -> bool:
        """Whether there is an older part to summarise at all (not an error when there is not)."""
        from agent.context.compaction import CompactionError, choose_cut

        try:
            cut = choose_cut(
                messages,
                self.settings.compact_keep_last_turns,
                int(self.policy.window * self.settings.compact_keep_fraction) or 50_000,
                self.policy.counter,
            )
        except CompactionError:
            return False
        return cut > 0

    def breakdown(self, rt) -> dict[str, Any]:
        return self.policy.breakdown(rt.full_request()).model_dump()


async def compact_async(rt, instructions: str | None) -> dict[str, Any]:
    """Compact by hand (`Agent.compact()`, `godwit -p --compact`)."""
    ctx: ContextRuntime = rt.context
    if not ctx.can_compact(rt.session.conversation.messages()):
        return {
            "status": "skipped",
            "message": "Nothing to compact yet: the conversation is "
            "shorter than what compaction keeps verbatim.",
        }
    before = len(rt.session.events)
    ok = await ctx._compact(rt, "manual", instructions)
    new = rt.session.events[before:]
    if ok:
        event = next(e for e in new if isinstance(e, ev.Compaction))
        return {
            "status": "compacted",
            "tokens_before": event.tokens_before,
            "tokens_after": event.tokens_after,
            "boundary_seq": event.boundary_seq,
        }
    error = next((e for e in new if isinstance(e, ev.Error)), None)
    return {"status": "failed", "message": error.message if error else "nothing to compact"}


def breakdown(rt) -> dict[str, Any]:
    """Where the window goes: system prompt, tools, memory, conversation, tool results, free;
    and each instruction file's share of the system prompt (`instruction_files`)."""
    from agent.context.tokens import heuristic_tokens
    from agent.prompt import instruction_section

    usage = rt.context.breakdown(rt)
    usage["instruction_files"] = [
        {"label": f.label, "path": str(f.path), "tokens": heuristic_tokens(instruction_section(f))}
        for f in getattr(rt, "instructions", [])
    ]
    return usage
