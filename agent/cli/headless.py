"""`godwit -p`: run one prompt without a UI and print text, one JSON object, or a JSON stream.

stream-json: the first line is `{"type": "system", ...}` with the session id, then one line per
event, then `{"type": "result", ...}`. Exit status: 0 on success, 1 when the run failed.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from typing import Any, TextIO

from agent import events as ev
from agent.describe import tool_title


def _line(out: TextIO, obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    out.flush()


async def run_headless(agent, prompt: str, output_format: str, *, compact: bool = False,
                       verbose: bool = False, out: TextIO = sys.stdout,
                       err: TextIO = sys.stderr) -> int:
    """Run `prompt` on `agent` (an agent.Agent); returns the process exit status."""
    rt = agent.runtime()
    loop = asyncio.get_running_loop()
    interrupts = 0

    def on_sigint() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            err.write("\nInterrupting (Ctrl-C again to quit at once)...\n")
            agent.cancel()
        else:
            raise SystemExit(130)

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError):  # not the main thread (tests, embedding)
        pass

    if output_format == "stream-json":
        _line(out, {"type": "system", "subtype": "init", "session_id": rt.id,
                    "model": rt.settings.model, "cwd": str(rt.cwd),
                    "permission_mode": rt.settings.permission_mode,
                    "tools": [t.name for t in rt.tools]})
    for warning in rt.session.warnings:
        err.write(f"warning: {warning}\n")
    compaction = None
    if compact:
        from agent.context import manager as context_runtime

        compaction = await context_runtime.compact_async(rt, None)
        if output_format == "text":
            err.write(f"compaction: {compaction['status']}"
                      f"{': ' + compaction['message'] if 'message' in compaction else ''}\n")
        elif output_format == "stream-json":
            _line(out, {"type": "compaction_result", **compaction})

    printed = False
    try:
        start_seq = len(rt.session.events)
        result = None
        errors: list[str] = []
        t0 = time.monotonic()
        async for event in agent.stream(prompt):
            if output_format == "stream-json":
                _line(out, event.model_dump(mode="json", exclude={"ephemeral"}))
            elif output_format == "text" and isinstance(event, ev.Retry):
                # What streamed before is void; scripts read stdout, people read stderr.
                err.write(f"retrying (attempt {event.attempt}) in {event.delay_s:.0f} s: "
                          f"{event.reason}\n")
            elif output_format == "text" and verbose and isinstance(event, ev.AssistantMessage):
                # A reply is printed whole once complete, so no partial attempt reaches stdout.
                reply = event.message.text()
                if reply.strip():
                    out.write(reply if reply.endswith("\n") else reply + "\n")
                    out.flush()
                    printed = True
            elif output_format == "text" and verbose and isinstance(event, (ev.ToolCall, ev.ToolResult)):
                out.write(tool_line(event))
                out.flush()
            if isinstance(event, ev.Error):
                errors.append(event.message)
                if output_format == "text":
                    err.write(f"error: {event.message}\n")
            if isinstance(event, ev.TurnEnd):
                result = event
        assert result is not None
        run = agent.result_of(result, errors, t0, start_seq)
    finally:
        try:
            loop.remove_signal_handler(signal.SIGINT)
        except (NotImplementedError, RuntimeError):
            pass

    payload = {"type": "result", "subtype": _subtype(run.stop_reason), **run.model_dump(),
               "total_cost_usd": run.cost_usd,
               "session_total_cost_usd": round(rt.totals.cost_usd, 6)}
    if compaction is not None:
        payload["compaction"] = compaction
    if output_format == "stream-json":
        _line(out, payload)
    elif output_format == "json":
        from agent.context import manager as context_runtime

        payload["context"] = context_runtime.breakdown(rt)
        _line(out, payload)
    else:
        if not printed and run.result.strip():
            out.write(run.result if run.result.endswith("\n") else run.result + "\n")
        if run.stop_reason not in ("end_turn", "stop_sequence"):
            err.write(f"[stopped: {run.stop_reason}; session {rt.id}; continue with "
                      f"`godwit --resume {rt.id}`]\n")
    return 1 if run.is_error else 0


def tool_line(event) -> str:
    """Lines for a tool call and its result (`--verbose` text output, the line-mode session):
    what the call does in words, then the first line of its result, or an edit's diff."""
    if isinstance(event, ev.ToolCall):
        return f"  > {tool_title(event.name, event.input)}\n"
    if event.diff and not event.is_error:
        return "".join(f"    {line}\n" for line in event.diff.splitlines())
    lines = event.content.strip().splitlines() or [""]
    more = f" (+{len(lines) - 1} lines)" if len(lines) > 1 else ""
    mark = "error: " if event.is_error else ""
    return f"    {mark}{lines[0][:100]}{more}\n"


def _subtype(reason: str) -> str:
    return {"end_turn": "success", "stop_sequence": "success", "max_turns": "error_max_turns",
            "interrupted": "interrupted", "error": "error_during_execution"}.get(reason, reason)
