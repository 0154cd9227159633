"""Start a fork server in the background, detached from the caller's session and terminal."""

from __future__ import annotations

import os
import sys

# The server's first lines: drop the current folder Python put on sys.path for `-c` (a
# repository's files must never shadow Godwit's modules), then hand over to server.main.
BOOT = (
    "import sys\n"
    "if not (sys.flags.safe_path or sys.flags.isolated): del sys.path[0]\n"
    "from agent.faststart.server import main\n"
    "main()\n"
)


def start_server(folder: str, key: str) -> int:
    """Spawn `python -c BOOT folder key` with our interpreter flags and environment; its
    output goes to `folder/key.log` (owner-only). Returns the pid."""
    import subprocess  # only on this slow path

    log = os.path.join(folder, key + ".log")
    flags = subprocess._args_from_interpreter_flags()  # the same -X/-W/-E/-s/-I as ours
    argv = [sys.executable, *flags, "-c", BOOT, folder, key]
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return os.posix_spawn(sys.executable, argv, os.environ, file_actions=actions, setsid=True)
