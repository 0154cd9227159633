"""Helpers for the checkpoint tests: tree states, `.git` fingerprints, a user-side git."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def tree_state(root: Path, *, skip_git: bool = True) -> dict[bytes, tuple]:
    """Every path under `root` -> (type, mode, content): ("file", perm, bytes),
    ("link", None, target bytes) or ("dir", perm, None). `.git` entries (dirs or gitfiles) are
    left out when `skip_git` (compare those with `git_fingerprint`)."""
    rootb = os.fsencode(str(root))
    out: dict[bytes, tuple] = {}
    stack = [b""]
    while stack:
        rel = stack.pop()
        with os.scandir(rootb + (b"/" + rel if rel else b"")) as it:
            for e in it:
                p = rel + b"/" + e.name if rel else e.name
                if skip_git and e.name == b".git":
                    continue
                st = e.stat(follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    out[p] = ("link", None, os.readlink(e.path))
                elif stat.S_ISDIR(st.st_mode):
                    out[p] = ("dir", stat.S_IMODE(st.st_mode), None)
                    stack.append(p)
                else:
                    with open(e.path, "rb") as fh:
                        out[p] = ("file", stat.S_IMODE(st.st_mode), fh.read())
    return out


def git_fingerprint(root: Path) -> dict[str, tuple]:
    """Every file and directory inside every `.git` under `root` (and `.git` files):
    path -> (mode, mtime_ns, size, sha256 of content or link target)."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in list(dirnames) + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            if ".git" not in rel.split(os.sep):
                continue
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                digest = hashlib.sha256(os.fsencode(os.readlink(p))).hexdigest()
            elif stat.S_ISDIR(st.st_mode):
                digest = "dir"
            else:
                with open(p, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
            out[rel] = (st.st_mode, st.st_mtime_ns, st.st_size, digest)
    return out


def user_env(home: Path) -> dict[str, str]:
    """An environment for the *user's* git commands in tests (independent of this machine)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        {
            "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "User",
            "GIT_AUTHOR_EMAIL": "user@example.com",
            "GIT_COMMITTER_NAME": "User",
            "GIT_COMMITTER_EMAIL": "user@example.com",
            "GIT_CONFIG_GLOBAL": "/dev/null",
        }
    )
    return env


def ugit(cwd: Path, *args: str, env: dict | None = None) -> str:
    """Run the user's git in `cwd` (for setting up fixtures and checking the user's repo)."""
    res = subprocess.run(
        ["git", *args], cwd=cwd, env=env or user_env(cwd.parent), capture_output=True, text=True
    )
    assert res.returncode == 0, f"git {args}: {res.stderr}"
    return res.stdout


def bash(cwd: Path, script: str) -> None:
    """Change the work tree the way an agent's bash tool would: a real subprocess."""
    res = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, capture_output=True, text=True
    )
    assert res.returncode == 0, f"bash failed: {script}\n{res.stderr}"


def diff_states(a: dict, b: dict) -> list[str]:
    """Readable differences between two tree states (for assertion messages)."""
    lines = []
    for p in sorted(set(a) | set(b)):
        if a.get(p) != b.get(p):
            lines.append(f"{p!r}: {_short(a.get(p))} != {_short(b.get(p))}")
    return lines


def _short(entry: tuple | None):
    if entry is None:
        return None
    return (entry[0], oct(entry[1]) if entry[1] else None, (entry[2] or b"")[:40])
