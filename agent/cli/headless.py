"""`godwit -p`: run one prompt without a UI and print text, one JSON object, or a JSON stream.

stream-json: Claude Code's message shapes (agent/compat/README.md): `system/init` with the session
id, `assistant`, `user` with tool results, `stream_event` with --include-partial-messages, and a
last `result`. events: Godwit's own stream, every event of the log as one line, then the result.
Exit status: 0 on success, 1 when the run failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from typing import Any, TextIO

from agent import events as ev
from agent.describe import tool_title
from agent.textsafe import safe_data


def _line(out: TextIO, obj: dict[str, Any]) -> None:
    # Non-UTF-8 file names are spelled \xNN (agent.textsafe): every line is valid UTF-8.
    out.write(json.dumps(safe_data(obj), ensure_ascii=False) + "\n")
    out.flush()


class _Printer:
    """Writes the events of one run in one output format; subscribed to the session's events
    for the whole run (so a compaction before the prompt is printed too)."""

    def __init__(self, out: TextIO, err: TextIO, verbose: bool) -> None:
        self.out, self.err, self.verbose = out, err, verbose

    def start(self, rt) -> None:
        for warning in rt.session.warnings:
            self.err.write(f"warning: {warning}\n")

    def event(self, event: ev.Event) -> None:
        if isinstance(event, ev.Error):
            self.err.write(f"error: {event.message}\n")
        elif isinstance(event, ev.Progress):
            self.progress(event)

    def progress(self, event: ev.Progress) -> None:
        """One line on stderr that updates in place on a terminal; elsewhere only its start
        and its end are written (a log file should not fill with counters)."""
        if self.err.isatty():
            end = "\n" if event.finished else ""
            self.err.write(f"\r\x1b[K{event.message}{end}")
        elif event.finished or not event.done:
            self.err.write(f"{event.message}\n")
        self.err.flush()

    def compaction(self, report: dict[str, Any]) -> None:
        detail = f": {report['message']}" if "message" in report else ""
        self.err.write(f"compaction: {report['status']}{detail}\n")

    def result(self, rt, run, payload: dict[str, Any]) -> None:
        pass


class _TextPrinter(_Printer):
    """The final answer on stdout; with --verbose, each reply once it is complete and a line
    (or an edit's diff) per tool call. Retries and errors go to stderr: what a retried call
    streamed is void, and scripts read stdout."""

    def __init__(self, out: TextIO, err: TextIO, verbose: bool) -> None:
        super().__init__(out, err, verbose)
        self.printed = False

    def event(self, event: ev.Event) -> None:
        out = self.out
        if isinstance(event, ev.Retry):
            self.err.write(
                f"retrying (attempt {event.attempt}) in {event.delay_s:.0f} s: {event.reason}\n"
            )
        elif self.verbose and isinstance(event, ev.AssistantMessage):
            reply = event.message.text()
            if reply.strip():
                out.write(reply if reply.endswith("\n") else reply + "\n")
                out.flush()
                self.printed = True
        elif self.verbose and isinstance(event, (ev.ToolCall, ev.ToolResult)):
            out.write(tool_line(event))
            out.flush()
        super().event(event)

    def result(self, rt, run, payload: dict[str, Any]) -> None:
        if not self.printed and run.result.strip():
            self.out.write(run.result if run.result.endswith("\n") else run.result + "\n")
        if run.stop_reason not in ("end_turn", "stop_sequence"):
            self.err.write(
                f"[stopped: {run.stop_reason}; session {rt.id}; continue with "
                f"`godwit --resume {rt.id}`]\n"
            )


class _JsonPrinter(_Printer):
    """One JSON object at the end: the result, with the context window's breakdown."""

    def event(self, event: ev.Event) -> None:
        pass

    def compaction(self, report: dict[str, Any]) -> None:
        pass

    def result(self, rt, run, payload: dict[str, Any]) -> None:
        from agent.context import manager

        payload["context"] = manager.breakdown(rt)
        _line(self.out, payload)


class _StreamJsonPrinter(_Printer):
    """A `system` line, every event as it happens, then the `result` line."""

    def start(self, rt) -> None:
        _line(
            self.out,
            {
                "type": "system",
                "subtype": "init",
                "session_id": rt.id,
                "model": rt.model_spec or rt.settings.model,
                "cwd": str(rt.cwd),
                "permission_mode": rt.settings.permission_mode,
                "tools": [t.name for t in rt.tools],
            },
        )
        super().start(rt)

    def event(self, event: ev.Event) -> None:
        _line(self.out, event.model_dump(mode="json", exclude={"ephemeral"}))

    def compaction(self, report: dict[str, Any]) -> None:
        _line(self.out, {"type": "compaction_result", **report})

    def result(self, rt, run, payload: dict[str, Any]) -> None:
        _line(self.out, payload)


class _ClaudeCodePrinter(_Printer):
    """Claude Code's stream-json: `system/init`, `assistant`, `user` (tool results),
    `stream_event` with --include-partial-messages, and the `result` (agent/compat)."""

    partial = False

    def start(self, rt) -> None:
        from agent.compat.facade import AgentFacade
        from agent.compat.stream_json import ClaudeCodeStream

        self.stream = ClaudeCodeStream(rt.id, partial=self.partial)
        self.facade = AgentFacade(self.agent)
        _line(self.out, self.stream.init(**self.facade.init_info()))
        super().start(rt)

    def event(self, event: ev.Event) -> None:
        if isinstance(event, ev.Error) and event.kind in ("mcp", "hook"):
            subtype = "mcp_server_failed" if event.kind == "mcp" else "hook_error"
            _line(self.out, self.stream.notice(subtype, message=event.message))
        if isinstance(event, ev.Progress):
            # Long work (first snapshot, compaction, loading shards): a system notice line.
            _line(
                self.out,
                self.stream.notice(
                    "progress",
                    **event.model_dump(
                        mode="json", include={"task", "message", "done", "total", "finished"}
                    ),
                ),
            )
        for line in self.stream.feed(event):
            _line(self.out, line)

    def compaction(self, report: dict[str, Any]) -> None:
        _line(self.out, self.stream.notice("compaction_result", **report))


PRINTERS = {
    "text": _TextPrinter,
    "json": _JsonPrinter,
    "stream-json": _ClaudeCodePrinter,
    # Godwit's own event stream: every event of the session log, one per line.
    "events": _StreamJsonPrinter,
}


async def run_headless(
    agent,
    prompt: str,
    output_format: str,
    *,
    compact: bool = False,
    verbose: bool = False,
    partial: bool = False,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Run `prompt` on `agent` (an agent.Agent); returns the process exit status."""
    rt = agent.runtime()
    printer = PRINTERS[output_format](out, err, verbose)
    printer.agent, printer.partial = agent, partial
    printer.start(rt)
    unsubscribe = agent.subscribe(printer.event)
    try:
        with _sigint_interrupts(agent, err):
            compaction = await _compact(agent, printer) if compact else None
            run = await _run(agent, prompt)
    finally:
        unsubscribe()
    payload = {
        "type": "result",
        "subtype": _subtype(run.stop_reason),
        **run.model_dump(),
        "total_cost_usd": run.cost_usd,
        "session_total_cost_usd": round(rt.totals.cost_usd, 6),
    }
    if compaction is not None:
        payload["compaction"] = compaction
    printer.result(rt, run, payload)
    return 1 if run.is_error else 0


async def _compact(agent, printer: _Printer) -> dict[str, Any]:
    report = await agent.acompact()
    printer.compaction(report)
    return report


async def _run(agent, prompt: str):
    """Drain the prompt's stream (the printer sees the events) and return its RunResult."""
    start_seq = len(agent.runtime().session.events)
    t0 = time.monotonic()
    end = None
    errors: list[str] = []
    async for event in agent.stream(prompt):
        if isinstance(event, ev.Error):
            errors.append(event.message)
        elif isinstance(event, ev.TurnEnd):
            end = event
    assert end is not None  # the loop always ends a turn
    return agent.result_of(end, errors, t0, start_seq)


@contextlib.contextmanager
def _sigint_interrupts(agent, err: TextIO):
    """Ctrl-C interrupts the prompt (its partial reply is kept); a second one quits at once."""
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
    try:
        yield
    finally:
        try:
            loop.remove_signal_handler(signal.SIGINT)
        except (NotImplementedError, RuntimeError):
            pass


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
    return {
        "end_turn": "success",
        "stop_sequence": "success",
        "max_turns": "error_max_turns",
        "interrupted": "interrupted",
        "error": "error_during_execution",
    }.get(reason, reason)
