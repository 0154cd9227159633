"""Claude Code's command line as the Claude Agent SDK writes it, read by `godwit`.

The SDK passes flags Godwit has no use for (`--setting-sources`, `--max-budget-usd`, ...) and
writes list values comma-joined (`--allowedTools Bash,Read`). `split_unknown` takes every flag
the parser does not know out of the command line (with its value where Claude Code's flag takes
one) so that it can be reported once on stderr instead of failing the run; `split_list` splits a
comma-joined rule list without cutting a rule's `(pattern)` apart.
"""

from __future__ import annotations

import argparse

# Claude Code flags that take a value (so `--flag VALUE` is skipped as a pair).
VALUED = {
    "--max-budget-usd",
    "--task-budget",
    "--fallback-model",
    "--betas",
    "--tools",
    "--setting-sources",
    "--plugin-dir",
    "--thinking",
    "--max-thinking-tokens",
    "--thinking-display",
    "--effort",
    "--json-schema",
    "--system-prompt-file",
    "--resume-session-at",
    "--resume-drops-turn",
    "--session-id",
    "--agents",
    "--settings",
    "--add-dir",
    "--debug-file",
    "--agent",
    "--output-style",
}


def known_options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


def split_unknown(argv: list[str], parser: argparse.ArgumentParser) -> tuple[list[str], list[str]]:
    """(argv without unknown options, the unknown options as written)."""
    known = known_options(parser)
    kept: list[str] = []
    unknown: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            kept.extend(argv[i:])
            break
        name = word.split("=", 1)[0]
        if word.startswith("--") and name not in known:
            unknown.append(name)
            if "=" not in word and name in VALUED and i + 1 < len(argv):
                i += 1  # its value goes with it
            i += 1
            continue
        kept.append(word)
        i += 1
    return kept, list(dict.fromkeys(unknown))


def split_list(values: list[str]) -> list[str]:
    """Rules given as several values and/or comma- or space-joined in one value:
    `["Bash(git log:*),Read", "Edit"]` -> `["Bash(git log:*)", "Read", "Edit"]`."""
    out: list[str] = []
    for value in values:
        depth, current = 0, ""
        for ch in value:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth = max(0, depth - 1)
            if ch in ", " and depth == 0:
                if current.strip():
                    out.append(current.strip())
                current = ""
                continue
            current += ch
        if current.strip():
            out.append(current.strip())
    return out
