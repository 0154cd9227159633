"""One tool call, start to finish: hooks, permission, checkpoint, run, result.

Every path ends in exactly one ToolResult event, so a call is answered once and never run twice.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging

from agent import events as ev
from agent.command_hooks import turns
from agent.describe import SESSION_ALLOWED, checkpoint_label_for
from agent.hooks import PreToolDecision, ToolCallInfo, call
from agent.messages import ToolUseBlock
from agent.runtime import Runtime
from tools.base import ToolResult

log = logging.getLogger("godwit")

# How long an interrupted tool gets to stop (bash kills its process group) before we move on.
STOP_GRACE_S = 5.0


async def execute(rt: Runtime, block: ToolUseBlock, turn: int) -> ev.ToolResult:
    """Run one tool call under the session's rules and log its result."""
    await rt.record(ev.ToolCall(id=block.id, name=block.name, input=block.input))
    try:
        result = await _decide_and_run(rt, block, turn)
    except _Stopped as stopped:
        # Interrupted while running: the partial output is still this call's one answer.
        await rt.record(
            ev.ToolResult(
                tool_use_id=block.id, name=block.name, content=stopped.result.content, is_error=True
            ),
            sync=True,
        )
        raise asyncio.CancelledError() from None
    return await rt.record(
        ev.ToolResult(
            tool_use_id=block.id,
            name=block.name,
            content=result.content,
            is_error=result.is_error,
            images=list(result.images),
            diff=result.diff,
        ),
        sync=True,
    )


async def _decide_and_run(rt: Runtime, block: ToolUseBlock, turn: int) -> ToolResult:
    if block.input_error:
        return ToolResult(
            is_error=True,
            content=(
                f"Your call to {block.name} could not be run: its input was not valid JSON "
                f"({block.input_error}). Send the call again with a valid JSON object."
            ),
        )
    tool = rt.tool(block.name)
    if tool is None:
        names = ", ".join(t.name for t in rt.tools)
        return ToolResult(
            is_error=True,
            content=f"There is no tool named {block.name!r}. Available tools: {names}.",
        )
    info = ToolCallInfo(id=block.id, name=block.name, input=dict(block.input), session_id=rt.id)
    hook_says = None
    if rt.hooks_of_session.has("PreToolUse"):
        # Shell hooks and SDK callbacks (Claude Code's PreToolUse) come first.
        pre = await turns.before_tool(rt, block.name, info.input, block.id)
        if pre.stop:
            rt.stop_requested = pre.stop_reason or "a PreToolUse hook stopped the session"
        if pre.updated_input is not None:
            info.input = dict(pre.updated_input)
        if pre.permission == "deny" or pre.stop:
            reason = pre.reason or pre.stop_reason or "refused by a PreToolUse hook"
            await _decision(rt, block, "deny", reason, "hook")
            return ToolResult(is_error=True, content=f"Denied by a hook: {reason}")
        hook_says = pre.permission
    for hook in rt.hooks.before_tool:
        try:
            decision = await call(hook, info)
        except Exception as exc:  # noqa: BLE001 - a user's hook failing denies, never crashes
            reason = f"a before-tool hook failed ({type(exc).__name__}: {exc})"
            await _decision(rt, block, "deny", reason, "hook")
            return ToolResult(is_error=True, content=f"Denied: {reason}")
        if isinstance(decision, PreToolDecision):
            if decision.deny is not None:
                await _decision(rt, block, "deny", decision.deny, "hook")
                return ToolResult(is_error=True, content=f"Denied: {decision.deny}")
            if decision.input is not None:
                info.input = dict(decision.input)
    args = info.input
    read_only = _read_only(tool, args)
    decision, args = await _permitted(rt, block, args, read_only, hook_says)
    if decision.decision != "allow":
        return ToolResult(
            is_error=True,
            content=(
                f"Permission to use {block.name} was denied ({decision.reason}). Do not retry the "
                "same call; continue without it or explain what you need and why."
            ),
        )
    if not read_only and getattr(tool, "writes_work_tree", True):
        await rt.checkpoint(turn, checkpoint_label_for(block.name, args), "before_tool")
    result = await run_tool(rt, tool, args)
    if getattr(result, "sandbox_blocked", None) and hasattr(tool, "run_outside_sandbox"):
        result = await _outside_sandbox(rt, block, tool, args, result, turn)
    for hook in rt.hooks.after_tool:
        try:
            await call(hook, info, result)
        except Exception:  # the call already ran: its result must be kept
            log.exception("after-tool hook failed for %s", block.name)
    if rt.hooks_of_session.has("PostToolUse"):
        content = await turns.after_tool(
            rt, block.name, args, block.id, result.content, result.is_error
        )
        result = ToolResult(content=content, is_error=result.is_error, images=result.images)
    return result


class _Outside:
    """The bash tool, running one command outside its sandbox (for run_tool)."""

    def __init__(self, tool) -> None:
        self.name = tool.name
        self._tool = tool

    def run(self, args: dict, ctx) -> ToolResult:
        return self._tool.run_outside_sandbox(args, ctx)


async def _outside_sandbox(
    rt: Runtime, block: ToolUseBlock, tool, args: dict, blocked: ToolResult, turn: int
) -> ToolResult:
    """The sandbox stopped the command: run it again outside, only with the user's approval
    (asked every time, whatever the mode) or an allow rule that names the command."""
    verdict = rt.policy.outside_sandbox(args)
    if verdict.decision == "ask":
        if rt.approver is None:
            verdict = verdict.__class__(
                "deny",
                "running outside the sandbox needs the user's approval; no one to ask (headless)",
                "headless",
            )
        else:
            try:
                answer = rt.approver(block.name, args, verdict.reason)
                if inspect.isawaitable(answer):
                    answer = await answer
            except Exception as exc:  # noqa: BLE001 - a failing approval callback is a refusal
                answer, verdict.reason = False, f"the approval callback failed ({exc})"
            verdict = verdict.__class__(
                "allow" if answer else "deny",
                "approved by the user" if answer else "denied by the user",
                "callback",
            )
    await _decision(
        rt, block, verdict.decision, f"outside the sandbox: {verdict.reason}", verdict.source
    )
    if verdict.decision != "allow":
        return ToolResult(
            is_error=blocked.is_error,
            content=blocked.content + (f"\n[Not run outside the sandbox: {verdict.reason}.]"),
        )
    if getattr(tool, "writes_work_tree", True):
        await rt.checkpoint(
            turn, checkpoint_label_for(block.name, args) + " (outside the sandbox)", "before_tool"
        )
    outside = await run_tool(rt, _Outside(tool), args)
    return ToolResult(
        is_error=outside.is_error,
        content=(
            "[The sandbox stopped the command; it was run again outside the sandbox with approval.]\n"
            + outside.content
        ),
    )


def _read_only(tool, args: dict) -> bool:
    try:
        return bool(tool.is_read_only(args))
    except Exception:  # noqa: BLE001 - a malformed call counts as writing: the safe side
        return False


async def _permitted(
    rt: Runtime, block: ToolUseBlock, args: dict, read_only: bool, hook_says: str | None = None
) -> tuple[ev.PermissionDecision, dict]:
    """Decide (asking the approver when the policy says so) and log the decision; returns it
    with the arguments to run (an approver may change them, as the Claude Agent SDK's
    can_use_tool does). A PreToolUse hook's `allow` skips the asking, its `ask` forces it;
    deny rules and protected paths hold either way."""
    verdict = rt.policy.check(block.name, args, read_only)
    if verdict.decision == "deny" or (verdict.decision == "allow" and hook_says != "ask"):
        return await _decision(rt, block, verdict.decision, verdict.reason, verdict.source), args
    if hook_says == "allow" and verdict.source != "protected":
        return await _decision(rt, block, "allow", "allowed by a PreToolUse hook", "hook"), args
    reason = verdict.reason if verdict.decision == "ask" else "a PreToolUse hook asks"
    if rt.approver is None:
        return await _decision(
            rt, block, "deny", f"{reason}; no one to ask (headless)", "headless"
        ), args
    if rt.hooks_of_session.has("Notification"):
        await turns.report(
            rt,
            await rt.hooks_of_session.notification(
                f"Godwit needs your permission to use {block.name}"
            ),
        )
    try:
        answer = rt.approver(block.name, args, reason)
        if inspect.isawaitable(answer):
            answer = await answer
    except Exception as exc:  # noqa: BLE001 - a failing approval callback is a refusal
        return await _decision(
            rt, block, "deny", f"the approval callback failed ({exc})", "callback"
        ), args
    if isinstance(answer, str) and answer == SESSION_ALLOWED:  # the UI's "allow for this session"
        return await _decision(rt, block, "allow", SESSION_ALLOWED, "callback"), args
    # An answer may carry more than yes/no (agent/compat/serve.py's Approval).
    changed = getattr(answer, "input", None)
    message = getattr(answer, "message", "") or "denied by the user"
    decision = await _decision(
        rt,
        block,
        "allow" if answer else "deny",
        "approved by the user" if answer else message,
        "callback",
    )
    return decision, (dict(changed) if answer and isinstance(changed, dict) else args)


async def _decision(
    rt: Runtime, block: ToolUseBlock, decision: str, reason: str, source: str
) -> ev.PermissionDecision:
    return await rt.record(
        ev.PermissionDecision(
            tool_use_id=block.id, tool=block.name, decision=decision, reason=reason, source=source
        )
    )


async def run_tool(rt: Runtime, tool, args: dict) -> ToolResult:
    """Run a (blocking) tool in a worker thread; on interrupt, tell it to stop and wait for it."""
    ctx = rt.tool_ctx
    ctx.cancel.clear()
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(None, _safe_run, tool, args, ctx)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        ctx.cancel.set()
        try:
            result = await asyncio.wait_for(asyncio.shield(future), STOP_GRACE_S)
        except (TimeoutError, concurrent.futures.CancelledError):
            result = ToolResult(
                is_error=True,
                content=f"{tool.name} did not stop within "
                f"{STOP_GRACE_S:.0f} s of the interrupt; its output is lost.",
            )
        if "interrupt" not in result.content.lower():
            result = ToolResult(
                is_error=True, content=result.content + "\n[interrupted by the user]"
            )
        raise _Stopped(result) from None


class _Stopped(Exception):
    """A tool call cut short by an interrupt, carrying what it produced."""

    def __init__(self, result: ToolResult) -> None:
        super().__init__("interrupted")
        self.result = result


def _safe_run(tool, args: dict, ctx) -> ToolResult:
    try:
        result = tool.run(args, ctx)
    except Exception as exc:  # noqa: BLE001 - a tool bug becomes a result the model can read
        return ToolResult(is_error=True, content=f"{tool.name} failed: {type(exc).__name__}: {exc}")
    if not isinstance(result, ToolResult):
        result = ToolResult(content=str(result))
    # Undecodable file names arrive as lone surrogates, which no API accepts: show them as
    # \udcff-style escapes, as the model would read them in a listing.
    content = result.content.encode("utf-8", "backslashreplace").decode("utf-8")
    if content != result.content:
        result = ToolResult(content=content, is_error=result.is_error, diff=result.diff)
    return result
