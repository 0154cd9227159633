"""git with no configuration that can run anything: the one mechanism for every git Godwit runs.

A repository's own files are hostile input. git reads configuration from the system, the user
and the repository (`.git/config`, which a nested repository planted in the work tree also
has), and several keys make git run a program: `core.fsmonitor` (run by `ls-files`, `status`,
...), hooks, clean/smudge filters, pagers, `diff.external`, `core.sshCommand`, credential
helpers, editors. So every git Godwit starts gets:

- an environment built from scratch (`env -i`): nothing inherited (no GIT_DIR, GIT_CONFIG_*,
  GIT_EXEC_PATH, pager variables) except PATH and TMPDIR;
- no system or global configuration file (GIT_CONFIG_NOSYSTEM, GIT_CONFIG_GLOBAL=/dev/null),
  no system attributes (GIT_ATTR_NOSYSTEM);
- the keys in `NO_EXEC_CONFIG` at command-line strength (GIT_CONFIG_COUNT/KEY/VALUE), which
  wins over anything a repository's `.git/config` says; `safe.bareRepository=explicit` keeps
  git from adopting a bare repository planted in a folder.

The checkpoint store (checkpoints/gitenv.py) and the search tools (tools/search_engines.py)
both build their git commands here. This package imports nothing of Godwit's.
"""

from __future__ import annotations

import os
import shutil

# Keys that would make git start a program, open a pager or reach out, neutralised. Keys that
# git only reads from protected (non-repository) config are listed too: cheap, and a future
# git may widen them.
NO_EXEC_CONFIG: dict[str, str] = {
    "core.fsmonitor": "false",
    "core.hooksPath": "/dev/null",
    "core.pager": "cat",
    "core.editor": "false",
    "sequence.editor": "false",
    "core.sshCommand": "false",
    "core.gitProxy": "",
    "core.askPass": "",
    "core.attributesFile": "/dev/null",
    "core.alternateRefsCommand": "",
    "credential.helper": "",
    "diff.external": "",
    "gpg.program": "false",
    "commit.gpgSign": "false",
    "tag.gpgSign": "false",
    "uploadpack.packObjectsHook": "",
    "protocol.allow": "never",
    "safe.bareRepository": "explicit",
    "gc.auto": "0",
    "gc.autoDetach": "false",
    "maintenance.auto": "false",
    "submodule.recurse": "false",
    "pager.status": "false",
    "pager.log": "false",
    "pager.diff": "false",
    "pager.show": "false",
    "pager.branch": "false",
    "pager.grep": "false",
}

ENV_BIN = shutil.which("env") or "/usr/bin/env"


def isolated_env(
    config: dict[str, str] | None = None,
    *,
    home: str | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment for a git child: no inherited git settings, no config file but
    the repository's, `NO_EXEC_CONFIG` plus `config` at command-line strength.

    `home`: HOME for git (default: a path that does not exist); `extra`: more variables
    (GIT_DIR, GIT_INDEX_FILE, ...) set as given.
    """
    merged = dict(NO_EXEC_CONFIG)
    merged.update(config or {})
    home = home or "/nonexistent"
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": home,
        "XDG_CONFIG_HOME": os.path.join(home, ".config"),
        "LC_ALL": "C",
        "LANG": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_PAGER": "cat",
        "GIT_CONFIG_COUNT": str(len(merged)),
    }
    if "TMPDIR" in os.environ:
        env["TMPDIR"] = os.environ["TMPDIR"]
    for i, (key, value) in enumerate(merged.items()):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    env.update(extra or {})
    return env


def git_argv(args: list[str], env: dict[str, str], git: str = "git") -> list[str]:
    """`env -i K=V... git ARGS`: the child sees exactly `env`, whatever launches it (GitPython
    and subprocess both start from os.environ otherwise)."""
    return [ENV_BIN, "-i", *(f"{k}={v}" for k, v in env.items()), git, *args]


def user_excludes_file() -> str | None:
    """The user's global ignore file (`core.excludesFile`, else git's default
    `$XDG_CONFIG_HOME/git/ignore`), found without letting git read any other configuration,
    so that listings still honour it while the global config itself is off."""
    home = os.environ.get("HOME", "")
    xdg = os.environ.get("XDG_CONFIG_HOME") or (os.path.join(home, ".config") if home else "")
    candidates = [os.path.join(xdg, "git", "config")] if xdg else []
    if home:
        candidates.append(os.path.join(home, ".gitconfig"))
    git = shutil.which("git")
    for cfg in candidates:
        if git is None or not os.path.isfile(cfg):
            continue
        import subprocess  # only when there is a global config to read

        env = isolated_env(home=home or None)  # HOME for `~/...` in the value
        try:
            out = subprocess.run(
                git_argv(
                    ["config", "--file", cfg, "--includes", "--path", "--get", "core.excludesFile"],
                    env,
                    git,
                ),
                check=False,
                cwd="/",
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=10,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        value = out.stdout.decode("utf-8", "surrogateescape").strip()
        if out.returncode == 0 and value:
            value = os.path.expanduser(value) if home else value
            return value if os.path.isfile(value) else None
    default = os.path.join(xdg, "git", "ignore") if xdg else ""
    return default if default and os.path.isfile(default) else None
