"""The bash sandbox with real bubblewrap: skipped cleanly where bwrap is absent or does not work."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

import tools
from tools.base import ToolContext
from tools.bash import BashTool
from tools.sandbox import DEFAULT_DENY_READ, SandboxConfig, sandbox_status

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        not sandbox_status().available,
        reason=f"bash sandbox unavailable: {sandbox_status().reason}",
    ),
]


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "work"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".godwit").mkdir()
    (root / ".godwit" / "settings.json").write_text("{}\n")
    return root


@pytest.fixture
def outside_dir():
    """A host folder outside the work tree and outside /tmp (which is private in the sandbox:
    a write there lands in the sandbox's own tmpfs, not on the host)."""
    import shutil
    import tempfile

    d = Path(
        tempfile.mkdtemp(
            prefix="godwit-sbx-", dir="/var/tmp" if os.path.isdir("/var/tmp") else None
        )
    )
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def box(repo):
    tool = BashTool(sandbox=SandboxConfig())
    ctx = ToolContext(cwd=repo)
    yield tool, ctx
    tools.close_all(ctx)


def sh(tool, ctx, command, **kw):
    return tool.run({"command": command, **kw}, ctx)


def test_writes_inside_work_and_outside_fail(box, repo, tmp_path, outside_dir):
    tool, ctx = box
    assert tool.sandboxed
    r = sh(tool, ctx, "echo hi > inside.txt && mkdir -p sub && echo x > sub/y && cat inside.txt")
    assert r.content == "hi\n" and (repo / "sub" / "y").read_text() == "x\n"
    r = sh(tool, ctx, f"echo owned > {tmp_path / 'outside.txt'}")
    assert not (tmp_path / "outside.txt").exists()  # /tmp inside is private
    outside = outside_dir / "outside.txt"
    r = sh(tool, ctx, f"echo owned > {outside}")
    assert not outside.exists()
    assert "Read-only file system" in r.content and r.sandbox_blocked == "write"
    assert "sandbox may have stopped this" in r.content
    home = Path(os.path.expanduser("~"))
    r = sh(tool, ctx, f"touch {home}/godwit-sandbox-probe")
    assert not (home / "godwit-sandbox-probe").exists()
    # A private /tmp: writable, but not the host's.
    r = sh(tool, ctx, "echo t > /tmp/godwit-private-probe && cat /tmp/godwit-private-probe")
    assert r.content == "t\n" and not Path("/tmp/godwit-private-probe").exists()


def test_git_and_godwit_folders_are_read_only(box, repo):
    tool, ctx = box
    before = (repo / ".git" / "config").read_text()
    r = sh(
        tool,
        ctx,
        "git config core.fsmonitor 'touch MARK'; echo x >> .git/config; "
        "mkdir -p .git/hooks; echo 'touch MARK' > .git/hooks/pre-commit; "
        'echo \'{"permissions": {"allow": ["bash"]}}\' > .godwit/settings.json',
    )
    assert (repo / ".git" / "config").read_text() == before
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()
    assert (repo / ".godwit" / "settings.json").read_text() == "{}\n"
    assert "Read-only file system" in r.content or "could not lock" in r.content
    # Reading and read-only git work.
    (repo / "a.txt").write_text("a\n")
    assert "a.txt" in sh(tool, ctx, "git status --short").content


def test_the_sandbox_leaves_no_trace_in_the_tree(tmp_path):
    """No mount point appears in the user's tree (it would show up in checkpoints)."""
    root = tmp_path / "plain"
    root.mkdir()
    tool, ctx = BashTool(sandbox=SandboxConfig()), ToolContext(cwd=root)
    try:
        assert sh(tool, ctx, "ls -A").content == "(no output)"
        assert os.listdir(root) == []
    finally:
        tools.close_all(ctx)


def _listen() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s, s.getsockname()[1]


def test_network_is_refused_unless_allowed(repo):
    server, port = _listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    probe = (
        f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), "
        "timeout=3); print('connected')\""
    )
    tool, ctx = BashTool(sandbox=SandboxConfig()), ToolContext(cwd=repo)
    try:
        r = sh(tool, ctx, probe)
        assert "connected" not in r.content and "[exit code" in r.content
        r = sh(tool, ctx, "python3 -c \"import socket; socket.getaddrinfo('example.com', 80)\"")
        assert "[exit code" in r.content and r.sandbox_blocked == "network"
    finally:
        tools.close_all(ctx)
    tool, ctx = BashTool(sandbox=SandboxConfig(network=True)), ToolContext(cwd=repo)
    try:
        assert "connected" in sh(tool, ctx, probe).content
    finally:
        tools.close_all(ctx)
        server.close()


def _running(pattern: str) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if cmd.startswith("sleep ") and pattern in cmd and state not in ("Z", "X"):
            out.append(int(entry))
    return out


def test_setsid_and_double_forked_jobs_die_with_the_session(box):
    tool, ctx = box
    tag1, tag2 = "4242.17", "4242.18"
    r = sh(
        tool,
        ctx,
        f"setsid sleep {tag1} > /dev/null 2>&1 & ( ( sleep {tag2} >/dev/null 2>&1 & ) & ); echo started",
    )
    assert "started" in r.content
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(_running("4242.1")) < 2:
        time.sleep(0.1)
    assert len(_running("4242.1")) == 2
    tools.close_all(ctx)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _running("4242.1"):
        time.sleep(0.1)
    assert _running("4242.1") == []


def test_a_blocked_command_can_run_outside_when_approved(box, repo, outside_dir):
    tool, ctx = box
    target = outside_dir / "out.txt"
    sh(tool, ctx, "mkdir -p sub && cd sub")
    r = sh(tool, ctx, f"pwd > {target}")
    assert r.sandbox_blocked == "write" and not target.exists()
    r = tool.run_outside_sandbox({"command": f"pwd > {target}"}, ctx)
    assert not r.is_error and target.read_text().strip() == str(repo / "sub")


def test_disabled_or_missing_sandbox_says_why(repo, monkeypatch):
    assert not BashTool(sandbox=SandboxConfig(enabled=False)).sandboxed
    assert BashTool(sandbox=SandboxConfig(enabled=False)).sandbox_unavailable_reason() is None
    assert not BashTool().sandboxed


def test_unix_sockets_outside_cannot_be_reached(box, outside_dir):
    """A socket file on the read-only host (docker.sock, say) must not connect from inside."""
    import socket as socketlib

    tool, ctx = box
    path = outside_dir / "daemon.sock"
    server = socketlib.socket(socketlib.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    server.settimeout(5)
    try:
        probe = (
            'python3 -c "import socket; c = socket.socket(socket.AF_UNIX); '
            f"c.connect('{path}'); print('connected')\""
        )
        r = sh(tool, ctx, probe)
        assert "connected" not in r.content and "[exit code" in r.content
        # socketpair (both ends inside) and ordinary programs still work.
        r = sh(
            tool,
            ctx,
            "python3 -c \"import socket; a, b = socket.socketpair(); a.send(b'x'); "
            'print(b.recv(1))"; git --version >/dev/null && echo git-ok',
        )
        assert "b'x'" in r.content and "git-ok" in r.content
        assert os.listdir("/proc") != []
        r = sh(tool, ctx, "ls /run | wc -l")
        assert r.content.strip() == "0"
    finally:
        server.close()


def test_credentials_and_deny_read_paths_show_empty(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE-KEY\n")
    (home / ".netrc").write_text("machine x login me password SECRET\n")
    godwit_home = tmp_path / "ghome"
    godwit_home.mkdir()
    (godwit_home / "settings.json").write_text('{"api_key": "sk-SECRET"}\n')
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GODWIT_HOME", str(godwit_home))
    root = home / "projects" / "repo"  # the work tree under the hidden home stays usable
    root.mkdir(parents=True)
    (root / ".env").write_text("TOKEN=SECRET\n")
    (root / "notes.txt").write_text("visible\n")
    config = SandboxConfig(deny_read=[*SandboxConfig().deny_read, ".env"])
    tool, ctx = BashTool(sandbox=config), ToolContext(cwd=root)
    try:
        r = sh(tool, ctx, "cat ~/.ssh/id_ed25519 ~/.netrc $GODWIT_HOME/settings.json .env")
        assert "SECRET" not in r.content and "PRIVATE-KEY" not in r.content, r.content
        r = sh(tool, ctx, "ls -A ~/.ssh | wc -w; ls -A $GODWIT_HOME | wc -w; wc -c < ~/.netrc")
        assert r.content.split() == ["0", "0", "0"], r.content  # shown empty, still readable
        r = sh(tool, ctx, "cat notes.txt; echo new > made.txt; touch ~/.ssh/planted")
        assert "visible" in r.content and (root / "made.txt").read_text() == "new\n"
        assert not (home / ".ssh" / "planted").exists()
    finally:
        tools.close_all(ctx)
    # Outside the sandbox nothing changed.
    assert (home / ".ssh" / "id_ed25519").read_text() == "PRIVATE-KEY\n"
    assert (root / ".env").read_text() == "TOKEN=SECRET\n"


def test_a_project_may_add_to_deny_read_but_not_drop_from_it(tmp_path):
    from agent.errors import ConfigError
    from agent.settings import load_settings

    home, project = tmp_path / "home", tmp_path / "project"
    (project / ".godwit").mkdir(parents=True)
    home.mkdir()
    settings = project / ".godwit" / "settings.json"
    for dropped in ([], ["~/.aws"], [d for d in DEFAULT_DENY_READ if d != "~/.ssh"]):
        settings.write_text(json.dumps({"sandbox": {"deny_read": dropped}}))
        with pytest.raises(ConfigError, match=r"sandbox.deny_read"):
            load_settings(home, project)
    settings.write_text(json.dumps({"sandbox": {"deny_read": [*DEFAULT_DENY_READ, ".env"]}}))
    assert ".env" in load_settings(home, project).sandbox.deny_read
    (home / "settings.json").write_text(json.dumps({"sandbox": {"deny_read": ["~/.aws"]}}))
    settings.unlink()
    assert load_settings(home, project).sandbox.deny_read == ["~/.aws"]  # the user may
    with pytest.raises(Exception, match="deny_read entries must be non-empty"):
        SandboxConfig(deny_read=[""])
