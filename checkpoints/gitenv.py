"""The shadow repository's git: every call isolated from the user's git setup.

Each command runs through GitPython's `Git.execute`, but GitPython always starts the child's
environment from `os.environ` and can only add to it, so an inherited `GIT_DIR`,
`GIT_INDEX_FILE`, `GIT_CONFIG_PARAMETERS` or `GIT_OBJECT_DIRECTORY` would leak in (the very bug
that made other agents' undo clobber the user's index). So the command GitPython starts is
`/usr/bin/env -i KEY=VALUE... git ARGS`: the environment git sees is exactly the one built here
(by `safegit`, the mechanism every git Godwit runs shares; its keys that can run a program are
neutralised for the user's tree too).

The isolation, point by point (the shadow config file says the same, for people who inspect it):
- no system or global config: GIT_CONFIG_NOSYSTEM=1, GIT_CONFIG_GLOBAL=/dev/null, HOME and
  XDG_CONFIG_HOME inside the store; no system attributes: GIT_ATTR_NOSYSTEM=1;
- settings passed as GIT_CONFIG_COUNT/KEY/VALUE (command-line strength): no hooks
  (core.hooksPath=/dev/null), no signing, no end-of-line conversion (core.autocrlf=false),
  no attributes file (core.attributesFile=/dev/null), no fsmonitor, no auto gc;
- `info/attributes` of the shadow repo (highest precedence) says
  `* -filter -text -merge -ident !eol !diff !working-tree-encoding`: no clean/smudge filter
  (so no LFS), no text conversion; `!diff` lets git detect binary files itself for previews;
- blobs are always hashed raw (`--no-filters` or, for update-index, the attributes above with no
  filter driver defined anywhere).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import git as gitpython

from safegit import git_argv, isolated_env

from .errors import GitFailed

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"

SHADOW_ATTRIBUTES = "* -filter -text -merge -ident !eol !diff !working-tree-encoding\n"

# Settings that hold whatever the shadow config file says (command-line strength).
_FORCED_CONFIG: dict[str, str] = {
    "core.hooksPath": "/dev/null",
    "core.attributesFile": "/dev/null",
    "core.autocrlf": "false",
    "core.safecrlf": "false",
    "core.symlinks": "true",
    "core.fileMode": "true",
    "core.ignoreCase": "false",
    "core.precomposeUnicode": "false",
    "core.protectNTFS": "false",
    "core.fsmonitor": "false",
    "core.untrackedCache": "true",
    "core.preloadIndex": "true",
    "core.quotePath": "false",
    "core.trustctime": "true",
    "core.checkStat": "default",
    "core.sparseCheckout": "false",
    "core.logAllRefUpdates": "false",
    "core.compression": "1",
    "core.looseCompression": "1",
    "commit.gpgSign": "false",
    "tag.gpgSign": "false",
    "gc.auto": "0",
    "gc.autoDetach": "false",
    "maintenance.auto": "false",
    "diff.renames": "false",
    "index.sparse": "false",
    "index.version": "4",  # path-prefix compression: half the index to read and write
    "submodule.recurse": "false",
    "user.name": "Godwit",
    "user.email": "godwit@localhost",
}


class ShadowGit:
    """Runs git against the shadow repository `git_dir` with the user's tree as work tree."""

    def __init__(self, git_dir: Path, work_tree: Path, home_dir: Path, excludes_file: Path | None):
        self.git_dir = git_dir
        self.work_tree = work_tree
        self._runner = gitpython.cmd.Git(str(work_tree))
        self._exe = gitpython.Git.GIT_PYTHON_GIT_EXECUTABLE or "git"
        config = dict(_FORCED_CONFIG)
        config["core.worktree"] = str(work_tree)
        config["core.excludesFile"] = str(excludes_file) if excludes_file else "/dev/null"
        env = isolated_env(
            config,
            home=str(home_dir),
            extra={
                "GIT_LITERAL_PATHSPECS": "1",
                "GIT_DIR": str(git_dir),
                "GIT_WORK_TREE": str(work_tree),
                "GIT_AUTHOR_NAME": "Godwit",
                "GIT_AUTHOR_EMAIL": "godwit@localhost",
                "GIT_COMMITTER_NAME": "Godwit",
                "GIT_COMMITTER_EMAIL": "godwit@localhost",
            },
        )
        self.env = env
        self.config = config

    # -- command lines -------------------------------------------------------------------------

    def argv(
        self,
        args: list[str],
        *,
        index: Path | None = None,
        extra_env: dict | None = None,
        bare: bool = False,
    ) -> list[str]:
        """The full command line: `env -i <clean env> git <args>`."""
        env = dict(self.env)
        if bare:  # commands before the repo exists (init) must not see GIT_DIR/GIT_WORK_TREE
            env.pop("GIT_DIR")
            env.pop("GIT_WORK_TREE")
        if index is not None:
            env["GIT_INDEX_FILE"] = str(index)
        if extra_env:
            env.update(extra_env)
        return git_argv(args, env, self._exe)

    def run(
        self,
        args: list[str],
        *,
        input: bytes | None = None,
        index: Path | None = None,
        extra_env: dict | None = None,
        check: bool = True,
        bare: bool = False,
    ) -> bytes:
        """Run git to completion and return its stdout (raw bytes); GitFailed on error."""
        argv = self.argv(args, index=index, extra_env=extra_env, bare=bare)
        if input is None:
            status, out, err = self._runner.execute(
                argv,
                with_extended_output=True,
                with_exceptions=False,
                stdout_as_string=False,
                strip_newline_in_stdout=False,
            )
        else:
            handle = self.start(args, index=index, extra_env=extra_env, stdin=True)
            proc = handle.proc
            out, errb = proc.communicate(input)
            status, err = proc.returncode, errb.decode("utf-8", "replace")
        if check and status != 0:
            raise GitFailed(args, status, err if isinstance(err, str) else str(err))
        return out

    def start(
        self,
        args: list[str],
        *,
        index: Path | None = None,
        extra_env: dict | None = None,
        stdin: bool = False,
    ) -> gitpython.cmd.Git.AutoInterrupt:
        """Start git for streaming or overlap; use `.proc` (a Popen with stdout/stderr piped).

        Keep the returned handle alive while using the process: GitPython kills the child when
        the handle is garbage-collected.
        """
        argv = self.argv(args, index=index, extra_env=extra_env)
        return self._runner.execute(
            argv, as_process=True, istream=subprocess.PIPE if stdin else None
        )

    @staticmethod
    def finish(handle: gitpython.cmd.Git.AutoInterrupt, args: list[str]) -> bytes:
        out, err = handle.proc.communicate()
        proc = handle.proc
        if proc.returncode != 0:
            raise GitFailed(args, proc.returncode, err.decode("utf-8", "replace"))
        return out

    # -- the repository ------------------------------------------------------------------------

    def init_repo(self) -> None:
        """Create the shadow repository (bare layout, its own index) and write its config."""
        self.git_dir.parent.mkdir(parents=True, exist_ok=True)
        self.run(["init", "--bare", "-q", str(self.git_dir)], bare=True)
        # GitPython's config writer edits the file only (GitPython's Repo() would look at
        # $GIT_DIR, which may be the user's).
        with gitpython.config.GitConfigParser(str(self.git_dir / "config"), read_only=False) as cw:
            cw.set_value("core", "bare", "false")
            for key, value in self.config.items():
                section, _, name = key.rpartition(".")
                cw.set_value(section, name, value)
        info = self.git_dir / "info"
        info.mkdir(exist_ok=True)
        (info / "attributes").write_text(SHADOW_ATTRIBUTES)
        (info / "exclude").write_text("# the user's exclude rules come through core.excludesFile\n")
        hooks = self.git_dir / "hooks"
        if hooks.is_dir():
            shutil.rmtree(hooks)  # sample hooks only; core.hooksPath=/dev/null anyway
