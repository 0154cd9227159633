"""No child process (a stdio MCP server, a hook command) outlives Godwit, even after `kill -9`.

The `mcp` package starts a stdio server in its own process group and, on a clean shutdown,
closes its stdin and kills the group; hook commands are killed on their time limit. A Godwit
killed with SIGKILL gets no shutdown, so such children are started through a small `sh` wrapper
instead (in a new session, so their group is their own): the wrapper puts a sleeping sentry in
the background, then `exec`s the server (which keeps the wrapper's pid, hence is the group
leader). The sentry checks once a second that both Godwit and the server are alive; when either
is gone it SIGKILLs the whole group: the server and anything it started. This is the same
guarantee, and the same mechanism, as the bash tool's shell sentry (tools/bash.py).

A zombie counts as dead: after `kill -9` Godwit stays a zombie until its parent reaps it, and
`kill -0` alone would keep saying "alive" until then.
"""

from __future__ import annotations

import os

_SENTRY = (
    "p=$$; g={pid}; "
    'alive() {{ kill -0 "$1" 2>/dev/null && ! grep -qs "^State:[[:space:]]*Z" "/proc/$1/status"; }}; '
    "( trap '' HUP INT TERM; "
    'while alive "$g" && alive "$p"; do sleep 1; done; '
    'kill -KILL -"$p" 2>/dev/null ) </dev/null >/dev/null 2>&1 & '
    'exec "$@"'
)


def guarded(command: str, args: list[str], *, owner: int | None = None) -> tuple[str, list[str]]:
    """The command line that runs `command args` under the sentry of process `owner`
    (default: this process)."""
    script = _SENTRY.format(pid=owner if owner is not None else os.getpid())
    return "sh", ["-c", script, "godwit-mcp", command, *args]
