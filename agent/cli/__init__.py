"""The `godwit` command. Imports stay lazy: `--help` and listings never load an SDK or torch."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SUBCOMMANDS = ("sessions", "checkpoints", "rewind", "undo-rewind", "diff", "demo")
FORMATS = ("text", "json", "stream-json")
MODES = ("default", "acceptEdits", "plan", "bypassPermissions")


def main_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="godwit",
        description="A long-running coding agent. Without -p, runs the interactive session in "
        "the current directory.",
        epilog="Subcommands: " + ", ".join(SUBCOMMANDS) + " (each answers --help).",
    )
    p.add_argument("prompt", nargs="?", help="first prompt of an interactive session")
    p.add_argument(
        "-p",
        "--print",
        dest="print_prompt",
        metavar="PROMPT",
        help="run PROMPT headless and print the result ('-' reads stdin)",
    )
    p.add_argument(
        "--output-format",
        choices=FORMATS,
        default="text",
        help="with -p: text (the final answer; with --verbose also each reply and tool call "
        "as it completes), json (one JSON result object at the end) or stream-json (one "
        "JSON object per line as it happens, ending with the result)",
    )
    p.add_argument("--model", help="anthropic:ID, openai:ID, local:PATH or scripted:FILE")
    p.add_argument("--base-url", help="API base URL (else ANTHROPIC_BASE_URL / OPENAI_BASE_URL)")
    p.add_argument("--permission-mode", choices=MODES)
    p.add_argument(
        "-c",
        "--continue",
        dest="continue_latest",
        action="store_true",
        help="continue the newest session of this directory",
    )
    p.add_argument(
        "-r",
        "--resume",
        metavar="ID",
        nargs="?",
        const="",
        help="continue session ID; without ID, pick one from a list",
    )
    p.add_argument("--fork", action="store_true", help="with --continue/--resume: a new session")
    p.add_argument("--max-turns", type=int, metavar="N", help="model calls per prompt at most")
    p.add_argument("--cwd", metavar="DIR", help="work tree (default: current directory)")
    p.add_argument(
        "--allow",
        "--allowedTools",
        dest="allow",
        action="append",
        default=[],
        metavar="RULE",
        help="allow rule, e.g. 'bash(git status)' (repeatable)",
    )
    p.add_argument(
        "--deny",
        "--disallowedTools",
        dest="deny",
        action="append",
        default=[],
        metavar="RULE",
        help="deny rule, e.g. 'bash(rm)' (repeatable)",
    )
    p.add_argument("--append-system-prompt", metavar="TEXT", help="extra system prompt text")
    p.add_argument("--thinking-budget", type=int, metavar="TOKENS", help="extended thinking")
    p.add_argument(
        "--compact",
        action="store_true",
        help="compact the session's conversation before running the prompt",
    )
    p.add_argument("--no-checkpoints", action="store_true", help="do not snapshot the work tree")
    p.add_argument(
        "--verbose",
        action="store_true",
        help="with -p and text output: also print each tool call and its result",
    )
    return p


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (
        ("model", args.model),
        ("base_url", args.base_url),
        ("permission_mode", args.permission_mode),
        ("max_turns", args.max_turns),
        ("system_prompt", args.append_system_prompt),
        ("thinking_budget", args.thinking_budget),
    ):
        if value is not None:
            out[key] = value
    if args.allow or args.deny:
        out["permissions"] = {"allow": args.allow, "deny": args.deny}
    if args.no_checkpoints:
        out["checkpoints"] = False
    return out


def _prompt_text(value: str) -> str:
    if value == "-":
        return sys.stdin.read().strip()
    return value


def _notice(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings (a model's retirement date, say) as one line on stderr, not a source excerpt."""
    print(f"godwit: notice: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    warnings.showwarning = _notice
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        from agent.cli.subcommands import run_subcommand

        return _guard(lambda: run_subcommand(argv[0], argv[1:]))
    parser = main_parser()
    args = parser.parse_args(argv)
    if args.max_turns is not None and args.max_turns < 1:
        parser.error("--max-turns must be at least 1")
    if args.fork and not (args.continue_latest or args.resume is not None):
        parser.error("--fork needs --continue or --resume")
    if args.continue_latest and args.resume is not None:
        parser.error("use either --continue or --resume, not both")
    return _guard(lambda: _run(args, parser))


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from agent.sdk import Agent

    resume = args.resume
    if resume == "":  # --resume without an id: choose one
        if args.print_prompt is not None:
            parser.error(
                "--resume without an ID opens a session picker; with -p give the ID "
                "(`godwit sessions` lists them)"
            )
        from agent.cli.interactive import pick_session

        resume = pick_session(Path(args.cwd or os.getcwd()))
        if resume is None:
            return 0
    agent = Agent(
        cwd=Path(args.cwd or os.getcwd()),
        settings=_overrides(args),
        session_id=resume,
        continue_latest=args.continue_latest,
        fork=args.fork,
    )
    try:
        if args.print_prompt is not None:
            prompt = _prompt_text(args.print_prompt)
            if not prompt.strip():
                parser.error("the prompt is empty")
            import asyncio

            from agent.cli.headless import run_headless

            return asyncio.run(
                run_headless(
                    agent, prompt, args.output_format, compact=args.compact, verbose=args.verbose
                )
            )
        from agent.cli.interactive import run_interactive

        return run_interactive(agent, args.prompt)
    finally:
        agent.close()


def _guard(fn) -> int:
    """Known failures become one clear line and exit status 1 (2 for usage), never a traceback."""
    from agent.errors import GodwitError, UsageError

    try:
        return fn()
    except UsageError as exc:
        print(f"godwit: {exc}", file=sys.stderr)
        return 2
    except GodwitError as exc:
        print(f"godwit: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
