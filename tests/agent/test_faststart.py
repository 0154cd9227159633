"""The fast-start server (agent/faststart) against the normal path, through the real command.

Each behaviour runs both ways, the `godwit` console script's code with `GODWIT_NO_SERVER=1` and
with a warm server, and the two must agree: output, exit status, working directory, environment,
umask, terminal, signals. Then the server's own promises: owner-only socket, other users refused,
stale sockets replaced, a changed code or process set-up gets another server, a dead client
takes its invocation with it.
"""

from __future__ import annotations

import json
import os
import pty
import resource
import select
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.faststart.fingerprint import fingerprint

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

ROOT = Path(__file__).resolve().parents[2]
CLIENT = [
    sys.executable,
    "-c",
    "import sys; from agent.faststart.client import main; sys.exit(main())",
]


class Server:
    """A GODWIT_HOME whose fast-start server has been started and is serving."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.run = home / "run"

    def env(self, fast: bool, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "GODWIT_NO_SERVER"}
        env.update(PYTHONPATH=str(ROOT), GODWIT_HOME=str(self.home), GODWIT_SERVER_IDLE_S="120")
        if not fast:
            env["GODWIT_NO_SERVER"] = "1"
        env.update(extra)
        return env

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.run.glob("*.log")))

    def served(self) -> int:
        return self.logs().count("] worker ")

    def wait_serving(self, not_pid: int | None = None, timeout: float = 240) -> None:
        """Until a server (other than `not_pid`) is serving. A new server's log replaces the
        old one's."""
        deadline = time.monotonic() + timeout
        while not [pid for pid in self.pids() if pid != not_pid]:
            assert time.monotonic() < deadline, self.logs()
            time.sleep(0.2)

    def pids(self) -> list[int]:
        return [
            int(line.split("[", 1)[1].split("]", 1)[0])
            for line in self.logs().splitlines()
            if "serving on" in line
        ]

    def stop(self) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("faststart_home")
    srv = Server(home)
    work = tmp_path_factory.mktemp("warm")
    subprocess.run(
        CLIENT + ["--help"],
        cwd=work,
        env=srv.env(True),
        capture_output=True,
        timeout=120,
        check=True,
    )
    srv.wait_serving()
    yield srv
    srv.stop()


def run(
    srv: Server,
    args: list[str],
    cwd: Path,
    fast: bool,
    umask: int = 0o022,
    input: str | None = None,
    **env: str,
) -> subprocess.CompletedProcess:
    before = srv.served()

    def child_setup() -> None:
        os.umask(umask)

    out = subprocess.run(
        CLIENT + args,
        cwd=cwd,
        env=srv.env(fast, **env),
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=child_setup,
    )
    # Which path ran is part of what is tested: the fast one must really have been taken.
    assert srv.served() == before + (1 if fast else 0), srv.logs()[-2000:]
    return out


def script(path: Path, turns: list) -> str:
    path.write_text(json.dumps(turns))
    return f"scripted:{path}"


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / "sub").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "a.txt").write_text("alpha\n")
    return root


def both(srv, args, cwd, **kw):
    slow = run(srv, args, cwd, fast=False, **kw)
    fast = run(srv, args, cwd, fast=True, **kw)
    return slow, fast


def test_text_output_and_exit_codes_match(server, repo, tmp_path):
    model = script(tmp_path / "s.json", [{"text": "Plain answer."}])
    slow, fast = both(server, ["-p", "hi", "--model", model], repo)
    assert slow.returncode == fast.returncode == 0, (slow.stderr, fast.stderr)
    assert slow.stdout == fast.stdout == "Plain answer.\n"
    assert slow.stderr == fast.stderr
    slow, fast = both(server, ["-p", "x", "--output-format", "yaml"], repo)
    assert slow.returncode == fast.returncode == 2
    assert slow.stderr == fast.stderr and "invalid choice" in fast.stderr
    slow, fast = both(server, ["-p", "x", "--model", "nonsense:thing"], repo)
    assert (slow.returncode, slow.stdout, slow.stderr) == (
        fast.returncode,
        fast.stdout,
        fast.stderr,
    )
    slow, fast = both(server, ["-p", "-", "--model", model], repo, input="from stdin")
    assert slow.returncode == fast.returncode == 0 and slow.stdout == fast.stdout


def test_cwd_environment_umask_and_files_match(server, repo, tmp_path):
    probe = (
        'pwd; umask; echo "probe=$GODWIT_PROBE"; echo "tz=$TZ"; '
        "touch made-$$; stat -c %a made-$$; rm made-$$; test -t 0 && echo tty || echo no-tty"
    )
    model = script(
        tmp_path / "s.json",
        [{"tool_calls": [{"name": "bash", "input": {"command": probe}}]}, {"text": "done"}],
    )
    args = [
        "-p",
        "probe",
        "--model",
        model,
        "--output-format",
        "events",
        "--permission-mode",
        "bypassPermissions",
        "--no-checkpoints",
    ]
    outputs = []
    for fast in (False, True):
        out = run(
            server,
            args,
            repo / "sub",
            fast=fast,
            umask=0o027,
            GODWIT_PROBE=f"value {fast}",
            TZ="Pacific/Auckland",
        )
        assert out.returncode == 0, out.stderr
        results = [json.loads(line) for line in out.stdout.splitlines()]
        text = json.dumps([e["content"] for e in results if e["type"] == "tool_result"])
        outputs.append(text)
        assert str(repo / "sub") in text and "0027" in text and f"probe=value {fast}" in text
        assert "tz=Pacific/Auckland" in text and "\\n640\\n" in text
    assert outputs[0].replace("value False", "value True") == outputs[1]


def test_terminal_is_the_callers(server, repo, tmp_path):
    model = script(tmp_path / "s.json", [{"text": "On a terminal."}])
    seen = []
    for fast in (False, True):
        master, slave = pty.openpty()
        before = server.served()
        proc = subprocess.Popen(
            CLIENT + ["-p", "hi", "--model", model],
            cwd=repo,
            env=server.env(fast, TERM="xterm"),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        data = b""
        while proc.poll() is None or select.select([master], [], [], 0.2)[0]:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    data += os.read(master, 65536)
                except OSError:
                    break
        proc.wait(timeout=60)
        os.close(master)
        assert proc.returncode == 0, data
        assert server.served() == before + fast
        seen.append(data)
    assert seen[0] == seen[1] and b"On a terminal." in seen[1]


def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_end_the_run_the_same_way(server, repo, tmp_path, sig):
    statuses = []
    for fast in (False, True):
        marker = repo / f"started-{fast}"  # inside the work tree: the sandbox lets bash write it
        model = script(
            tmp_path / f"s{fast}.json",
            [
                {
                    "tool_calls": [
                        {"name": "bash", "input": {"command": f"touch {marker}; sleep 30"}}
                    ]
                },
                {"text": "after"},
            ],
        )
        proc = subprocess.Popen(
            CLIENT
            + [
                "-p",
                "go",
                "--model",
                model,
                "--permission-mode",
                "bypassPermissions",
                "--no-checkpoints",
            ],
            cwd=repo,
            env=server.env(fast),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_for(marker)
        time.sleep(0.3)
        proc.send_signal(sig)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        statuses.append(proc.returncode)
    assert statuses[0] == statuses[1], statuses


def test_a_killed_client_takes_its_invocation_along(server, repo, tmp_path):
    marker = repo / "started"
    model = script(
        tmp_path / "s.json",
        [
            {"tool_calls": [{"name": "bash", "input": {"command": f"touch {marker}; sleep 30"}}]},
            {"text": "after"},
        ],
    )
    before = server.logs().count("] worker ")
    proc = subprocess.Popen(
        CLIENT
        + [
            "-p",
            "go",
            "--model",
            model,
            "--permission-mode",
            "bypassPermissions",
            "--no-checkpoints",
        ],
        cwd=repo,
        env=server.env(True),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for(marker)
    lines = [l for l in server.logs().splitlines() if "] worker " in l][before:]
    worker = int(lines[0].split("worker ")[1].split()[0])
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 20
    while Path(f"/proc/{worker}").exists() and _state(worker) != "Z":
        assert time.monotonic() < deadline, "the worker outlived its client"
        time.sleep(0.1)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_socket_is_private_and_other_users_are_refused(server, tmp_path):
    run_dir = server.run
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    (sock,) = run_dir.glob("*.sock")
    assert stat.S_IMODE(sock.lstat().st_mode) == 0o600
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    # Another user cannot reach the socket at all (folder 0700, socket 0600)...
    assert _connect_as(65534, sock) == "PermissionError"
    # ...and if they could (a link, opened up here on purpose), the server hangs up on them.
    import tempfile

    open_dir = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's own folders are private
    open_dir.chmod(0o711)
    alias = open_dir / "alias.sock"
    os.link(sock, alias)
    os.chmod(alias, 0o666)
    try:
        assert _connect_as(65534, alias) == "closed"
    finally:
        os.chmod(alias, 0o600)
        alias.unlink()
        open_dir.rmdir()
    assert "refused a connection from another user" in server.logs()


def _connect_as(uid: int, path: Path) -> str:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(10)
            try:
                conn.connect(str(path))
                result = "closed" if conn.recv(1) == b"" else "answered"
            except OSError as exc:
                result = type(exc).__name__
            os.write(write, result.encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    result = os.read(read, 100).decode()
    os.close(read)
    return result


def test_no_server_when_switched_off_or_folder_not_private(tmp_path, repo):
    srv = Server(tmp_path / "home")
    out = subprocess.run(
        CLIENT + ["--help"],
        cwd=repo,
        env=srv.env(False),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and not srv.run.exists()
    srv.run.mkdir(parents=True)
    srv.run.chmod(0o755)  # someone else could plant a socket here: never use it
    out = subprocess.run(
        CLIENT + ["--help"], cwd=repo, env=srv.env(True), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and "usage: godwit" in out.stdout
    assert list(srv.run.iterdir()) == []


def test_stale_socket_is_replaced(tmp_path, repo):
    srv = Server(tmp_path / "home")
    try:
        subprocess.run(
            CLIENT + ["--help"],
            cwd=repo,
            env=srv.env(True),
            capture_output=True,
            timeout=60,
            check=True,
        )
        srv.wait_serving()
        (first,) = srv.pids()
        os.kill(first, signal.SIGKILL)  # leaves its socket file behind
        time.sleep(0.2)
        assert list(srv.run.glob("*.sock"))
        out = subprocess.run(
            CLIENT + ["--help"],
            cwd=repo,
            env=srv.env(True),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0 and "usage: godwit" in out.stdout
        srv.wait_serving(not_pid=first)
        out = run(srv, ["--help"], repo, fast=True)
        assert out.returncode == 0 and "usage: godwit" in out.stdout
    finally:
        srv.stop()


def test_fingerprint_follows_code_interpreter_and_process(tmp_path):
    code = [
        sys.executable,
        "-c",
        "from agent.faststart.fingerprint import fingerprint; print(fingerprint())",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = subprocess.run(
        code, env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    again = subprocess.run(
        code, env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert base == again
    assert (
        subprocess.run(
            code, env={**env, "TEXTUAL_DEBUG": "1"}, capture_output=True, text=True
        ).stdout
        != base
    )
    assert (
        subprocess.run(
            [sys.executable, "-X", "dev", *code[1:]],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
        ).stdout
        != base
    )
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lower = subprocess.run(
        code,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard)),
    ).stdout
    assert lower != base
    # A copy of the packages: editing a module changes the key.
    import shutil

    copy = tmp_path / "copy"
    for package in ("agent", "tools", "checkpoints"):
        shutil.copytree(
            ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    env_copy = {**os.environ, "PYTHONPATH": str(copy)}
    before = subprocess.run(
        code, env=env_copy, cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    target = copy / "tools" / "base.py"
    target.write_text(target.read_text() + "\n# edited\n")
    after = subprocess.run(
        code, env=env_copy, cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert before != after
    assert fingerprint() != ""
