"""Claude Code's command-line habits that argparse does not give by itself.

- `--allowedTools Read Grep "Bash(git diff:*)"` takes several values, as in Claude Code; the
  values also may be comma-separated. A value that cannot be a rule (`fix the bug`) ends the list
  and, when no prompt was given, is the prompt: a rule list never swallows the prompt silently.
- `-p` is a switch: the prompt is the positional argument, standard input when there is none, and
  both when input is piped in as well (`cat log | godwit -p "why"`).
- A lone word one edit away from a subcommand (`godwit sesions`) is a typo, not a prompt.
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

from agent.cli.claude_flags import split_list

# `Name` or `Name(anything)`: Read, Bash(git diff:*), mcp__server__tool, str_replace_based_edit_tool
_RULE = re.compile(r"^[A-Za-z_][\w.-]*(\(.*\))?$", re.DOTALL)


def looks_like_rule(value: str) -> bool:
    """Whether `value` has the shape of a permission rule, or of several joined by commas as the
    Agent SDK writes them (their meaning is checked later)."""
    depth = 0
    for ch in value.strip():
        depth += (ch == "(") - (ch == ")" and depth > 0)
        if ch.isspace() and depth == 0:
            return False  # `fix the bug`: words outside a rule's parentheses are a prompt
    parts = split_list([value])
    return bool(parts) and all(_RULE.match(part) for part in parts)


def take_rules(values: list[str]) -> tuple[list[str], list[str]]:
    """(the rules, the values after the first one that is not a rule)."""
    for i, value in enumerate(values):
        if not looks_like_rule(value):
            return split_list(values[:i]), values[i:]
    return split_list(values), []


def edit_distance_is_one(a: str, b: str) -> bool:
    """One insertion, deletion, substitution or swap of neighbours turns `a` into `b`."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        return len(diff) == 1 or (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def did_you_mean(word: str, commands: tuple[str, ...]) -> str | None:
    """The subcommand a lone word was probably meant to be, or None."""
    if not word or any(c.isspace() for c in word):
        return None
    for command in commands:
        if edit_distance_is_one(word.lower(), command):
            return command
    return None


def print_prompt(positional: str | None, stdin: TextIO | None = None) -> str:
    """The headless prompt: the positional text, what is piped on standard input, or both (the
    prompt first, then the input). `-` as the prompt means standard input alone."""
    stdin = sys.stdin if stdin is None else stdin
    piped = ""
    if positional == "-" or (stdin is not None and not stdin.isatty()):
        piped = stdin.read()
    if positional in (None, "-"):
        return piped.strip()
    if piped.strip():
        return f"{positional}\n\n{piped.rstrip()}"
    return positional
