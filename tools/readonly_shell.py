"""Shell commands that only read: what the bash tool may run without asking, in any mode.

Strict on purpose, since a wrong "read-only" runs a command nobody approved:
- one simple command: no chaining, pipes, substitutions, expansions (`$`, globs, `~`), no
  redirection other than into /dev/null itself or onto another descriptor, no assignments, no
  backslashes, no comments;
- the program is a bare name from a short list of commands that have no option that writes,
  deletes or runs another program (`sort -o`, `find -delete`, `sed -i`, `rg --pre`, `tree -o`,
  `less`'s shell escape are why those are not listed), and options known to run or write are
  refused where the command has them (`git diff --output`, `git -c`, `git -C`);
- no argument is an absolute path, a `..` step or a home path: reading outside the work tree
  still asks (a symbolic link inside the tree that points out is not seen here).
git runs `core.fsmonitor` and `diff.external` from the repository's own config: that file is
protected from the editor (every `.git` at any depth) and read-only inside the bash sandbox.
"""

from __future__ import annotations

from .shell_text import plain_words

_ANY_ARGS = frozenset(
    {
        "ls",
        "cat",
        "head",
        "tail",
        "wc",
        "pwd",
        "stat",
        "du",
        "df",
        "basename",
        "dirname",
        "realpath",
        "readlink",
        "nl",
        "cmp",
        "od",
        "md5sum",
        "sha1sum",
        "sha256sum",
        "sha512sum",
        "whoami",
        "id",
        "uname",
        "true",
        "false",
        "which",
        "grep",
        "egrep",
        "fgrep",
    }
)
_GIT_SUBCOMMANDS = frozenset(
    {
        "status",
        "diff",
        "log",
        "show",
        "blame",
        "rev-parse",
        "ls-files",
        "shortlog",
        "describe",
        "branch",
        "tag",
        "remote",
        "grep",
    }
)
# Options of those subcommands that write a file, run a program or open a pager.
_GIT_BAD_PREFIXES = (
    "--output",
    "--ext-diff",
    "--open-files-in-pager",
    "-O",
    "--exec",
    "--upload-pack",
    "--receive-pack",
    "--paginate",
)
_GIT_BRANCH_OPTS = frozenset(
    {
        "-a",
        "-r",
        "-v",
        "-vv",
        "--all",
        "--remotes",
        "--verbose",
        "--list",
        "-l",
        "--show-current",
        "--no-color",
        "--color=never",
    }
)
_GLOB_CHARS = frozenset("*?[]")


def is_read_only_command(command: str) -> bool:
    """True when `command` is one plain command from the read-only list (see module doc)."""
    if not isinstance(command, str) or "#" in command or "!" in command:
        return False
    words = plain_words(command)
    if not words:
        return False
    for w in words[1:]:
        if (
            _GLOB_CHARS & set(w)
            or w.startswith(("/", "~", "-/"))
            or ".." in w.split("/")
            or "=/" in w
            or "=~" in w
        ):
            return False
    prog, args = words[0], words[1:]
    if "/" in prog:
        return False
    if prog in _ANY_ARGS:
        return True
    if prog == "rg":
        return not any(
            a.startswith(("--pre", "--search-zip", "--hostname-bin"))
            or (a.startswith("-") and not a.startswith("--") and "z" in a)
            for a in args
        )
    if prog == "git":
        return _git_read_only(args)
    return False


def _git_read_only(args: list[str]) -> bool:
    while args and args[0] in ("--no-pager", "-P"):
        args = args[1:]
    if not args or args[0] not in _GIT_SUBCOMMANDS:
        return False  # also every other global option: -C, -c, --git-dir, --exec-path, ...
    sub, rest = args[0], args[1:]
    if any(a.startswith(_GIT_BAD_PREFIXES) for a in rest):
        return False
    if sub == "branch":
        return all(a in _GIT_BRANCH_OPTS for a in rest)
    if sub == "tag":
        return not rest or (
            rest[0] in ("-l", "--list")
            and all(a in ("-l", "--list") or not a.startswith("-") for a in rest)
        )
    if sub == "remote":
        return rest in ([], ["-v"], ["--verbose"])
    return True
