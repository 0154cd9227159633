"""Reading shell command text: the pieces of a compound command, and the plain words of one.

Shared by the permission rules (agent/permissions.py) and the read-only command classifier
(tools/readonly_shell.py). None of this is a parser of bash; it is deliberately lopsided:
- `split_command` splits on every separator character, quoted or not, so it may cut a command
  in more pieces than bash would but never in fewer (an allow decision needs every piece);
- `plain_words` refuses anything beyond plain words (substitutions, expansions, redirections
  other than to /dev/null itself, assignments), so "allowed" is never a guess;
- `canonical_words` undoes the cheap spellings (quotes, backslashes, `/usr/bin/` prefixes,
  wrappers, git's global options) so that deny rules catch more. It can never catch all: deny
  rules on shell text are a convenience, the sandbox is the boundary.
"""

from __future__ import annotations

import os
import re
import shlex

# Shell syntax that joins commands.
_SPLIT = re.compile(r"&&|\|\||;|\||\n|\r|(?<![<>&])&(?![>&])")
_INNER = re.compile(r"\$\(([^()]*)\)|`([^`]*)`|<\(([^()]*)\)|>\(([^()]*)\)")
NESTED = re.compile(r"\$\(|`|<\(|>\(")
# Redirections that write nowhere: into /dev/null itself (not /dev/null_x), or one descriptor
# onto another.
_HARMLESS_REDIRECT = re.compile(
    r"(?:(?<=\s)|^)(?:\d?>&[12](?=\s|$)|(?:&|\d)?>>?\s*/dev/null(?=\s|$)|\d?<\s*/dev/null(?=\s|$))"
)
# Anything left that could expand, substitute, redirect, chain, group or escape.
_NOT_PLAIN = re.compile(r"[$`<>;&|(){}\n\r\\]")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
WRAPPERS = frozenset(
    {
        "env",
        "command",
        "builtin",
        "exec",
        "nohup",
        "time",
        "nice",
        "stdbuf",
        "timeout",
        "sudo",
        "doas",
        "xargs",
        "setsid",
        "unbuffer",
        "ionice",
        "chrt",
        "taskset",
        "strace",
        "ltrace",
        "busybox",
    }
)
SHELLS = frozenset({"bash", "sh", "zsh", "dash", "ksh", "ash", "fish"})
# git's options before the subcommand that take a value as the next word.
_GIT_VALUE_OPTS = frozenset(
    {
        "-C",
        "-c",
        "--git-dir",
        "--work-tree",
        "--namespace",
        "--exec-path",
        "--config-env",
        "--super-prefix",
        "--list-cmds",
    }
)


def split_command(command: str) -> list[str]:
    """The simple commands inside a compound one (`a && b | c` -> [a, b, c])."""
    return [part.strip() for part in _SPLIT.split(command) if part.strip()]


def every_command(command: str) -> list[str]:
    """Every simple command, including those nested in $(...), backticks and `sh -c '...'`."""
    out: list[str] = []
    pending = [command]
    while pending and len(out) < 256:
        text = pending.pop()
        for m in _INNER.finditer(text):
            pending.append(next(g for g in m.groups() if g is not None))
        for part in split_command(_INNER.sub(" ", text)):
            out.append(part)
            inner = shell_c(part)
            if inner:
                pending.append(inner)
    return out


def shell_c(part: str) -> str | None:
    """The script of `bash -c '...'` (or sh, zsh, ...; options such as -l before -c), if any."""
    words = canonical_words(part)
    if not words or words[0] not in SHELLS:
        return None
    try:
        raw = shlex.split(part)
    except ValueError:
        raw = part.split()
    for i, w in enumerate(raw):
        if re.fullmatch(r"-[a-zA-Z]*c[a-zA-Z]*", w) and i + 1 < len(raw):
            return raw[i + 1]
    return None


def strip_harmless_redirects(part: str) -> str:
    return " ".join(_HARMLESS_REDIRECT.sub(" ", part).split())


def writes_files(command: str) -> bool:
    """True when the command redirects output anywhere but /dev/null or another descriptor."""
    return ">" in _HARMLESS_REDIRECT.sub(" ", command)


def plain_words(part: str) -> list[str] | None:
    """The words of a simple command that is nothing but words, or None.

    None when the text has a substitution, an expansion (`$`), a redirection other than into
    /dev/null itself, grouping, chaining, a backslash escape, or starts with a `VAR=value`
    assignment: all ways to make a command do more than its words say.
    """
    text = _HARMLESS_REDIRECT.sub(" ", part)  # blanks kept: a newline must still be seen
    if not text.strip() or _NOT_PLAIN.search(text):
        return None
    try:
        words = shlex.split(text)
    except ValueError:
        return None
    if not words or _ASSIGNMENT.match(words[0]):
        return None
    return words


def canonical_words(part: str) -> list[str]:
    """The words of `part` with cheap disguises removed, for deny rules: quotes and backslashes
    dropped (`pu''sh`, `r\\m`), grouping and wrappers (`env -i`, `command`, `nohup`) and
    assignments taken off the front, the program's directory dropped (`/bin/rm`), and git's
    global options removed (`git -C . push` -> `git push`)."""
    text = strip_harmless_redirects(part)
    text = re.sub(r"\\(.)", r"\1", text).replace("'", "").replace('"', "")
    words = [w for w in re.split(r"[\s(){}]+", text) if w]
    while words:
        head = words[0]
        if _ASSIGNMENT.match(head):
            words.pop(0)
        elif os.path.basename(head) in WRAPPERS:
            words.pop(0)
            while words and (
                words[0].startswith("-")
                or _ASSIGNMENT.match(words[0])
                or re.fullmatch(r"\d+[smhd]?", words[0])
            ):
                words.pop(0)
        else:
            break
    if words:
        words[0] = os.path.basename(words[0])
    if words and words[0] == "git":
        rest = words[1:]
        while rest and rest[0].startswith("-"):
            opt = rest.pop(0)
            if opt in _GIT_VALUE_OPTS and rest:
                rest.pop(0)
        words = ["git", *rest]
    return words
