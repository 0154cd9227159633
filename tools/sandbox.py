"""The bash tool's sandbox: bubblewrap on Linux, the boundary that text rules cannot be.

Inside it (see `bwrap_argv`):
- the whole file system is read-only (`--ro-bind / /`), except the work tree, the folders of
  `allow_write` (and `--add-dir`), and a private, empty /tmp;
- the work tree's `.git` and `.godwit` (and `.mcp.json`) stay read-only when they exist:
  hooks, a repository config (fsmonitor, aliases) and Godwit's own settings could otherwise
  turn one sandboxed command into code that runs outside it later. A missing one can be
  created (known limit; see bwrap_argv);
- the `deny_read` paths (by default the credential stores: ~/.ssh, ~/.aws, ~/.gnupg, ...,
  and Godwit's home) show empty;
- no network unless `network` is true (`--unshare-net`: only a loopback device); with a list
  of hosts, still none of its own: a bridge inside (tools/sandbox_proxy.py) hands each
  connection to 127.0.0.1:PORT out to Godwit's proxy, which reaches only the listed hosts;
- no new Unix-domain sockets and no io_uring (a seccomp filter, tools/sandbox_seccomp.py), and
  /run hidden: a socket file on a read-only file system still connects (docker.sock);
- its own PID namespace (`--unshare-pid`): when the sandbox's first process dies, the kernel
  kills every process in it, so a `setsid` or double-forked job cannot outlive the shell; and
  `--die-with-parent` ends it with Godwit.

`sandbox_status()` says whether it works here (Linux, `bwrap` on PATH, and a trial run that
succeeds: some containers forbid the namespaces) and, if not, why, in one sentence.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from .sandbox_hosts import HostPattern, parse_pattern
from .sandbox_seccomp import program as seccomp_program

PROTECTED_NAMES = (".git", ".godwit", ".mcp.json")
# Where credentials live: a command (or a prompt injection steering one) has no business there,
# and with any network at all what it reads could leave. Godwit's home holds every project's
# session logs and the user's settings.
DEFAULT_DENY_READ = (
    "~/.ssh",
    "~/.aws",
    "~/.azure",
    "~/.gnupg",
    "~/.password-store",
    "~/.kube",
    "~/.docker",
    "~/.netrc",
    "~/.git-credentials",
    "~/.npmrc",
    "~/.pypirc",
    "~/.config/gcloud",
    "~/.config/gh",
    "~/.config/hub",
    "$GODWIT_HOME",
    "~/.godwit",
)
_TRIAL_TIMEOUT_S = 10


class SandboxConfig(BaseModel):
    """The `sandbox` settings: whether bash runs in the sandbox and what it may reach."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        True,
        description="Run bash commands in the sandbox where it works "
        "(Linux with bubblewrap); elsewhere Godwit says so once and falls "
        "back to asking for approval.",
    )
    network: bool | list[str] = Field(
        False,
        description='What sandboxed commands may reach: false or "none" (nothing), true or '
        '"all" (everything), or a list of hosts such as ["pypi.org", "*.pythonhosted.org", '
        '"github.com:443"], reached only through Godwit\'s proxy (tools/sandbox_proxy.py).',
    )
    allow_write: list[str] = Field(
        default_factory=list,
        description="More folders sandboxed "
        "commands may write (absolute, or relative to the work tree).",
    )
    deny_read: list[str] = Field(
        default_factory=lambda: list(DEFAULT_DENY_READ),
        description="Files and folders sandboxed commands cannot read: shown empty inside "
        "(absolute, `~/...`, `$VAR/...`, or relative to the work tree). The default hides "
        "credential stores and Godwit's home; setting the key replaces the list.",
    )

    @field_validator("network", mode="before")
    @classmethod
    def _network(cls, v: object) -> bool | list[str]:
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.strip().lower() in ("none", "all"):
            return v.strip().lower() == "all"
        if not isinstance(v, list):
            # pydantic reports a ValueError as a settings error; a TypeError would escape it.
            raise ValueError(  # noqa: TRY004
                'must be false or "none", true or "all", or a list of hosts such as '
                f'["pypi.org", "*.pythonhosted.org", "github.com:443"], not {v!r}'
            )
        hosts = [str(parse_pattern(item)) for item in v]
        return list(dict.fromkeys(hosts)) or False  # an empty list allows nothing

    @property
    def allowed_hosts(self) -> list[HostPattern] | None:
        """The host list when `network` is one (commands go through the proxy), else None."""
        if isinstance(self.network, list):
            return [parse_pattern(h) for h in self.network]
        return None

    @field_validator("allow_write", "deny_read")
    @classmethod
    def _paths(cls, v: list[str], info: ValidationInfo) -> list[str]:
        for p in v:
            if not p or "\x00" in p:
                raise ValueError(f"{info.field_name} entries must be non-empty paths")
        return v


@dataclass(frozen=True)
class SandboxStatus:
    available: bool
    reason: str  # why not, worded for the user; "" when available


def _base_args(network: bool) -> list[str]:
    args = [
        "--die-with-parent",
        "--unshare-pid",
        "--unshare-ipc",
        "--new-session",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
    ]
    # The daemons' sockets (docker.sock, D-Bus, databases) live under /run: hidden. The
    # seccomp filter refuses new Unix sockets anywhere else too.
    for run in ("/run", "/var/run"):
        if os.path.isdir(run) and not os.path.islink(run):
            args += ["--tmpfs", run]
    if network:
        # A resolv.conf that points into /run must still be found.
        resolv = os.path.realpath("/etc/resolv.conf")
        if resolv.startswith(("/run/", "/var/run/")) and os.path.isfile(resolv):
            args += ["--ro-bind", resolv, resolv]
    else:
        args.append("--unshare-net")
    return args


def _seccomp_fd() -> int | None:
    """A pipe's read end holding the seccomp filter (tools/sandbox_seccomp.py), or None."""
    prog = seccomp_program()
    if prog is None:
        return None
    r, w = os.pipe()
    try:
        os.write(w, prog)  # a few dozen bytes: far below a pipe's buffer
    finally:
        os.close(w)
    return r


@functools.lru_cache(maxsize=1)
def sandbox_status() -> SandboxStatus:
    """Whether the bubblewrap sandbox works on this machine (checked once per process)."""
    if not sys.platform.startswith("linux"):
        return SandboxStatus(
            False, f"the bash sandbox needs Linux with bubblewrap; this is {sys.platform}"
        )
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return SandboxStatus(
            False,
            "bubblewrap (`bwrap`) is not installed; install it "
            "(`apt-get install bubblewrap`) to run bash in a sandbox",
        )
    with tempfile.TemporaryDirectory(prefix="godwit-sandbox-check-") as d:
        fd = _seccomp_fd()
        seccomp = ["--seccomp", str(fd)] if fd is not None else []
        argv = [
            bwrap,
            *_base_args(False),
            *seccomp,
            "--bind",
            d,
            d,
            "--chdir",
            d,
            "--",
            "sh",
            "-c",
            "echo ok > probe && cat probe",
        ]
        try:
            r = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=_TRIAL_TIMEOUT_S,
                check=False,
                pass_fds=(fd,) if fd is not None else (),
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            return SandboxStatus(False, f"bubblewrap could not be started ({e})")
        finally:
            if fd is not None:
                os.close(fd)
    if r.returncode != 0 or r.stdout.strip() != b"ok":
        err = r.stderr.decode("utf-8", "replace").strip().splitlines()
        return SandboxStatus(
            False,
            "bubblewrap does not work here ("
            + (err[-1] if err else f"exit code {r.returncode}")
            + ")",
        )
    return SandboxStatus(True, "")


@dataclass
class SandboxMounts:
    """The command line prefix for one sandboxed shell, the descriptors it must inherit (the
    seccomp filter; the caller closes its copies once the shell started), and the stand-ins
    to clean up after."""

    argv: list[str]
    standins: list[Path]
    pass_fds: tuple[int, ...] = ()

    def cleanup(self) -> None:
        """Remove the empty mount points made for missing protected names (if still empty)."""
        for p in self.standins:
            try:
                if p.is_dir() and not p.is_symlink():
                    p.rmdir()
            except OSError:
                pass


def bwrap_argv(
    config: SandboxConfig,
    work_tree: Path,
    *,
    extra_dirs: list[Path] = (),
    read_only_dirs: list[Path] = (),
    start_in: Path | None = None,
) -> SandboxMounts:
    """`bwrap ... --` for a shell whose writable world is the work tree and `extra_dirs`,
    started in `start_in` (default: the work tree's top).

    `read_only_dirs`: host folders to show inside at the same path, read-only (the bash tool's
    command folder under the host's /tmp, hidden otherwise by the private /tmp).
    """
    bwrap = shutil.which("bwrap") or "bwrap"
    root = Path(os.path.realpath(work_tree))
    # With a host list the sandbox has no network of its own: the proxy reaches the hosts.
    args = [bwrap, *_base_args(config.network is True)]
    writable = [root]
    for d in [*extra_dirs, *(Path(p) for p in config.allow_write)]:
        p = Path(d) if Path(d).is_absolute() else root / d
        p = Path(os.path.realpath(p))
        if p.is_dir():
            writable.append(p)
    for w in writable:
        args += ["--bind", str(w), str(w)]
    standins: list[Path] = []
    for w in writable:
        for name in PROTECTED_NAMES:
            p = w / name
            if os.path.lexists(p):
                # A link is mounted as its target would be: bind its own path read-only.
                args += ["--ro-bind", str(p), str(p)]
            # A missing one is not stood in for: the mount point would appear in the user's
            # tree (and in every checkpoint) while the shell runs. What a command can do by
            # creating .godwit/settings.json is limited by the settings loader instead (a
            # project file cannot loosen the sandbox, and its allow rules never let a command
            # run outside it).
    for d in read_only_dirs:
        args += ["--ro-bind", str(d), str(d)]
    args += _hidden(config.deny_read, root, writable)
    fd = _seccomp_fd()
    if fd is not None:
        args += ["--seccomp", str(fd)]
    args += ["--chdir", str(Path(os.path.realpath(start_in)) if start_in else root), "--"]
    return SandboxMounts(args, standins, (fd,) if fd is not None else ())


def _hidden(entries: list[str], root: Path, writable: list[Path]) -> list[str]:
    """Mounts that show each existing `deny_read` path empty: a folder as an empty read-only
    tmpfs, a file as an empty file. A path that holds a writable folder (the work tree inside
    `~/.config/gh`, say) is left alone: hiding it would hide the work."""
    args: list[str] = []
    for entry in entries:
        expanded = os.path.expanduser(os.path.expandvars(entry))
        if "$" in expanded:  # an unset variable: nothing to hide
            continue
        p = Path(expanded) if os.path.isabs(expanded) else root / expanded
        if not os.path.lexists(p):
            continue
        real = Path(os.path.realpath(p))
        if any(w == real or w.is_relative_to(real) for w in writable):
            continue
        if real.is_dir():
            args += ["--tmpfs", str(real), "--remount-ro", str(real)]
        elif real.exists():
            args += ["--ro-bind", _empty_file(), str(real)]
    return args


@functools.cache
def _empty_file() -> str:
    """An empty file to show in place of a hidden one: programs that read their config file
    (npm's ~/.npmrc) see it empty instead of failing on a device they may not open."""
    folder = tempfile.mkdtemp(prefix="godwit-sandbox-empty-")  # 0700, ours alone
    path = os.path.join(folder, "empty")
    with open(path, "x"):
        pass
    os.chmod(path, 0o444)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return path


# What a command prints when the sandbox, not the command, was the reason it failed.
_BLOCKED = [
    ("write", re.compile(r"Read-only file system|EROFS")),
    (
        "network",
        re.compile(
            r"Network is unreachable|Could not resolve host|Temporary failure in "
            r"name resolution|Name or service not known|getaddrinfo failed|"
            r"No address associated with hostname|ENETUNREACH|EAI_AGAIN"
        ),
    ),
]


def blocked_by_sandbox(output: str) -> str | None:
    """ "write" or "network" when a failed command's output shows the sandbox stopped it."""
    for kind, rx in _BLOCKED:
        if rx.search(output):
            return kind
    return None
