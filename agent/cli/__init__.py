"""The `godwit` command. Imports stay lazy: `--help` and listings never load an SDK or torch."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SUBCOMMANDS = ("sessions", "checkpoints", "rewind", "undo-rewind", "diff", "demo", "mcp", "trust")
# stream-json: Claude Code's message shapes; events: Godwit's own event stream (the log's lines).
FORMATS = ("text", "json", "stream-json", "events")
MODES = ("default", "acceptEdits", "plan", "bypassPermissions")


def main_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="godwit",
        description="A long-running coding agent. Without -p, runs the interactive session in "
        "the current directory.",
        epilog="Subcommands: " + ", ".join(SUBCOMMANDS) + " (each answers --help). Models: "
        "anthropic:ID, openai:ID, local:PATH, or the aliases sonnet, opus, haiku (the newest of "
        "the family; the default is the newest Sonnet).",
    )
    p.add_argument(
        "prompt",
        nargs="?",
        help="the prompt (with -p: '-' or none reads standard input; piped input is added)",
    )
    p.add_argument(
        "-p",
        "--print",
        dest="print_mode",
        action="store_true",
        help="run the prompt headless and print the result",
    )
    p.add_argument("-v", "--version", action="store_true", help="print the version and exit")
    p.add_argument(
        "--output-format",
        choices=FORMATS,
        default="text",
        help="with -p: text (the final answer; with --verbose also each reply and tool call "
        "as it completes), json (one JSON result object at the end), stream-json (one JSON "
        "object per line in Claude Code's message shapes, ending with the result) or events "
        "(Godwit's own event stream, one event of the session log per line)",
    )
    p.add_argument(
        "--model", help="anthropic:ID, openai:ID, local:PATH, scripted:FILE, sonnet, opus or haiku"
    )
    p.add_argument("--base-url", help="API base URL (else ANTHROPIC_BASE_URL / OPENAI_BASE_URL)")
    p.add_argument("--permission-mode", choices=MODES)
    p.add_argument(
        "-c",
        "--continue",
        dest="continue_latest",
        action="store_true",
        help="continue the newest session of this project",
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
    p.add_argument("--cwd", metavar="DIR", help="where to start (default: current directory)")
    p.add_argument(
        "--allowedTools",
        "--allow",
        dest="allow",
        nargs="+",
        action="extend",
        default=[],
        metavar="RULE",
        help="allow rules, e.g. Read Grep 'Bash(git diff:*)' (several values, or comma-separated)",
    )
    p.add_argument(
        "--disallowedTools",
        "--deny",
        dest="deny",
        nargs="+",
        action="extend",
        default=[],
        metavar="RULE",
        help="deny rules, e.g. 'Bash(rm:*)' (several values, or comma-separated)",
    )
    p.add_argument("--system-prompt", metavar="TEXT", help="replace Godwit's system prompt")
    p.add_argument(
        "--append-system-prompt", metavar="TEXT", help="append TEXT to the system prompt"
    )
    p.add_argument(
        "--settings", metavar="FILE_OR_JSON", help="a settings file (or JSON) over the others"
    )
    p.add_argument(
        "--add-dir",
        dest="add_dirs",
        action="append",
        default=[],
        metavar="DIR",
        help="another folder the tools may reach (repeatable)",
    )
    p.add_argument("--thinking-budget", type=int, metavar="TOKENS", help="extended thinking")
    p.add_argument(
        "--compact",
        action="store_true",
        help="compact the session's conversation before running the prompt",
    )
    p.add_argument("--no-checkpoints", action="store_true", help="do not snapshot the work tree")
    p.add_argument(
        "--sandbox",
        choices=("on", "off"),
        help="run bash in the OS sandbox (default: on where it works)",
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        help="with -p and text output: also print each tool call and its result",
    )
    claude = p.add_argument_group("Claude Code compatibility (what the Claude Agent SDK passes)")
    claude.add_argument(
        "--input-format",
        choices=("text", "stream-json"),
        default="text",
        help="stream-json: prompts and control requests as JSON lines on stdin",
    )
    claude.add_argument(
        "--include-partial-messages",
        action="store_true",
        help="stream-json: also stream_event lines with the deltas",
    )
    claude.add_argument(
        "--replay-user-messages",
        action="store_true",
        help="stream-json: echo each prompt read from stdin, with its uuid",
    )
    claude.add_argument(
        "--permission-prompt-tool",
        metavar="NAME",
        help="'stdio': ask the SDK (can_use_tool) before a call that needs it",
    )
    claude.add_argument(
        "--mcp-config",
        action="append",
        default=[],
        metavar="FILE_OR_JSON",
        help='MCP servers ({"mcpServers": {...}}), repeatable',
    )
    claude.add_argument(
        "--strict-mcp-config", action="store_true", help="use only the servers of --mcp-config"
    )
    claude.add_argument(
        "--fork-session", dest="fork", action="store_true", help="the same as --fork"
    )
    return p


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (
        ("model", args.model),
        ("base_url", args.base_url),
        ("permission_mode", args.permission_mode),
        ("max_turns", args.max_turns),
        ("append_system_prompt", args.append_system_prompt),
        ("replace_system_prompt", args.system_prompt),
        ("thinking_budget", args.thinking_budget),
    ):
        if value is not None:
            out[key] = value
    if args.allow or args.deny:
        out["permissions"] = {"allow": args.allow, "deny": args.deny}
    if args.add_dirs:
        out["add_dirs"] = list(args.add_dirs)
    if args.no_checkpoints:
        out["checkpoints"] = False
    if args.sandbox is not None:
        out["sandbox"] = {"enabled": args.sandbox == "on"}
    return out


def version() -> str:
    """Godwit's version, as installed (else the source tree's)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("godwit")
    except PackageNotFoundError:
        return "0.1.0"


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
    from agent.cli.claude_flags import split_unknown

    argv, unknown = split_unknown(argv, parser)
    for flag in unknown:
        # Claude Code (and the SDK driving it) passes flags Godwit has no use for: say so once.
        print(f"godwit: ignoring unsupported option {flag}", file=sys.stderr)
    args = parser.parse_args(argv)
    if args.version:
        print(f"godwit {version()}")
        return 0
    _claude_code_habits(args, parser)
    if args.input_format == "stream-json" and args.output_format != "stream-json":
        parser.error("--input-format stream-json needs --output-format stream-json")
    if args.max_turns is not None and args.max_turns < 1:
        parser.error("--max-turns must be at least 1")
    if args.fork and not (args.continue_latest or args.resume is not None):
        parser.error("--fork needs --continue or --resume")
    if args.continue_latest and args.resume is not None:
        parser.error("use either --continue or --resume, not both")
    return _guard(lambda: _run(args, parser))


def _claude_code_habits(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Rule lists that do not swallow the prompt, and typos of subcommands (conventions.py)."""
    from agent.cli.conventions import did_you_mean, take_rules

    for name in ("allow", "deny"):
        rules, rest = take_rules(getattr(args, name))
        setattr(args, name, rules)
        if rest:
            if args.prompt is not None or len(rest) > 1:
                flag = "--allowedTools" if name == "allow" else "--disallowedTools"
                parser.error(
                    f"{flag}: {rest[0]!r} is not a rule such as Read or 'Bash(git diff:*)'"
                )
            args.prompt = rest[0]
    meant = did_you_mean(args.prompt or "", SUBCOMMANDS)
    if meant:
        parser.error(
            f"{args.prompt!r} is not a command: did you mean `godwit {meant}`? "
            "(To send it as a prompt, write more than one word.)"
        )


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from agent.sdk import Agent
    from agent.settings import read_settings_arg

    layer = read_settings_arg(args.settings) if args.settings else None
    resume = args.resume
    if resume == "":  # --resume without an id: choose one
        if args.print_mode:
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
        mcp_config=args.mcp_config,
        strict_mcp_config=args.strict_mcp_config,
    )
    if layer:
        agent.options.settings_layer = layer
    try:
        if args.input_format == "stream-json":
            import asyncio

            from agent.compat.serve import serve

            return asyncio.run(serve(agent, args))
        if args.print_mode:
            from agent.cli.conventions import print_prompt

            prompt = print_prompt(args.prompt)
            if not prompt.strip():
                parser.error("the prompt is empty: give one, or pipe it in with -p")
            import asyncio

            from agent.cli.headless import run_headless

            return asyncio.run(
                run_headless(
                    agent,
                    prompt,
                    args.output_format,
                    compact=args.compact,
                    verbose=args.verbose,
                    partial=args.include_partial_messages,
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
