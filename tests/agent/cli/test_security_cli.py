"""Issue 14 through the real CLI: `godwit -p` in a subprocess, the official SDK talking to the
fake Messages API on 127.0.0.1, which sends the hostile tool calls."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.fakes.replies import call, say
from tools.sandbox import sandbox_status

ROOT = Path(__file__).resolve().parents[3]
MODEL = "anthropic:claude-sonnet-5-5"
needs_sandbox = pytest.mark.skipif(
    not sandbox_status().available, reason=f"bash sandbox unavailable: {sandbox_status().reason}"
)


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "a.txt").write_text("alpha\n")
    return root


@pytest.fixture
def outside():
    """A host folder outside the tree and outside /tmp (private inside the sandbox)."""
    d = Path(
        tempfile.mkdtemp(
            prefix="godwit-cli-", dir="/var/tmp" if os.path.isdir("/var/tmp") else None
        )
    )
    yield d
    shutil.rmtree(d, ignore_errors=True)


def godwit(llm_server, repo, *args, timeout=90, env=None):
    full = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ANTHROPIC_API_KEY": "k",
        "ANTHROPIC_BASE_URL": llm_server.url,
        **(env or {}),
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cli",
            *args,
            "--model",
            MODEL,
            "--output-format",
            "events",
        ],
        cwd=repo,
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def results(out) -> list[dict]:
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    return [line for line in lines if line.get("type") == "tool_result"]


def bash(command):
    return call("bash", {"command": command})


def path_of(folder: Path, *exes: str) -> str:
    """A PATH holding only links to these programs (those installed here), in a new `folder`."""
    folder.mkdir()
    for exe in exes:
        found = shutil.which(exe)
        if found:
            os.symlink(found, folder / exe)
    return str(folder)


# -- item 5: the sandbox ----------------------------------------------------------------------


@needs_sandbox
def test_headless_bash_runs_in_the_sandbox_without_approval(llm_server, repo, outside):
    before = (repo / ".git" / "config").read_text()
    llm_server.push(
        bash("echo made > inside.txt"),
        bash("echo '[core] fsmonitor = touch MARK' >> .git/config"),
        bash(f"echo owned > {outside}/x.txt"),
        say("done"),
    )
    out = godwit(llm_server, repo, "-p", "go")
    assert out.returncode == 0, out.stderr[-2000:]
    assert (repo / "inside.txt").read_text() == "made\n"  # no approval needed, headless
    assert (repo / ".git" / "config").read_text() == before
    assert not (outside / "x.txt").exists()
    rs = results(out)
    assert "Read-only file system" in rs[2]["content"]
    assert "Not run outside the sandbox" in rs[2]["content"]  # headless: refused


@needs_sandbox
def test_the_sandbox_holds_in_bypass_mode_and_setsid_jobs_die(llm_server, repo, outside):
    llm_server.push(
        bash(f"touch {outside}/bypass.txt; setsid sleep 4343.5 >/dev/null 2>&1 & echo ok"),
        say("done"),
    )
    out = godwit(llm_server, repo, "-p", "go", "--permission-mode", "bypassPermissions")
    assert out.returncode == 0, out.stderr[-2000:]
    assert not (outside / "bypass.txt").exists()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 4343.5" not in ps


@needs_sandbox
def test_an_allow_rule_naming_the_command_lets_it_run_outside(llm_server, repo, outside):
    command = f"touch {outside}/named.txt"
    llm_server.push(bash(command), say("done"))
    out = godwit(llm_server, repo, "-p", "go", "--allow", f"Bash({command})")
    assert out.returncode == 0, out.stderr[-2000:]
    assert (outside / "named.txt").exists()
    assert "run again outside the sandbox" in results(out)[0]["content"]


def test_sandbox_off_asks_and_a_project_cannot_loosen_it(llm_server, repo):
    llm_server.push(bash("echo made > inside.txt"), say("done"))
    out = godwit(llm_server, repo, "-p", "go", "--sandbox", "off")
    assert out.returncode == 0, out.stderr[-2000:]
    assert not (repo / "inside.txt").exists()
    assert "denied" in results(out)[0]["content"]
    (repo / ".godwit").mkdir()
    (repo / ".godwit" / "settings.json").write_text(json.dumps({"sandbox": {"enabled": False}}))
    out = godwit(llm_server, repo, "-p", "go")
    assert out.returncode != 0 and "loosens the bash sandbox" in out.stderr


def test_without_a_working_sandbox_godwit_says_so_once(llm_server, repo, tmp_path):
    path = path_of(tmp_path / "bin", "git", "bash", "sh", "env")  # a PATH without bwrap
    llm_server.push(bash("echo made > inside.txt"), say("done"))
    out = godwit(llm_server, repo, "-p", "go", env={"PATH": path})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stderr.count("without a sandbox") == 1 and "bubblewrap" in out.stderr
    assert not (repo / "inside.txt").exists()  # fell back to approvals: refused headless


# -- item 9: provider_options and base_url are checked when the settings are read --------------


@pytest.mark.parametrize(
    "layer, key",
    [
        ({"provider_options": {"max_retries": "many"}}, "provider_options.max_retries"),
        ({"provider_options": {"timeout_s": "x"}}, "provider_options.timeout_s"),
        ({"provider_options": {"retries": 3}}, "provider_options.retries"),
        ({"base_url": "not a url"}, "base_url"),
    ],
)
def test_bad_provider_settings_are_one_message_naming_the_key(
    llm_server, repo, godwit_home, layer, key
):
    (Path(godwit_home) / "settings.json").write_text(json.dumps(layer))
    llm_server.push(say("never sent"))
    out = godwit(llm_server, repo, "-p", "hi", timeout=60)
    assert out.returncode in (1, 2), out.stdout  # a configuration error, not a crash
    assert key in out.stderr and "Traceback" not in out.stderr
    assert out.stderr.count("\n") <= 2
    assert llm_server.model_requests == []


# -- item 6: a lone surrogate in a tool input does not brick the session ----------------------


def test_a_lone_surrogate_in_a_tool_input_leaves_the_session_continuable(llm_server, repo):
    (repo / os.fsdecode(b"bad\xffname.txt")).write_text("x\n")
    llm_server.push(
        call("str_replace_based_edit_tool", {"command": "view", "path": "bad\udcffname.txt"}),
        bash("ls"),
        say("first done"),
    )
    out = godwit(
        llm_server,
        repo,
        "-p",
        "look at bad\udcffname.txt",
        env={"PYTHONIOENCODING": "utf-8:surrogateescape"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.splitlines()[-1])["result"] == "first done"
    llm_server.push(say("continued"))
    out = godwit(llm_server, repo, "-p", "again", "--continue")
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.splitlines()[-1])["result"] == "continued"
    # What went to the API is valid UTF-8 JSON, the odd name shown as U+FFFD.
    sent = json.dumps(llm_server.model_requests[-1].body, ensure_ascii=False)
    assert "bad\ufffdname.txt" in sent


# -- item 7: a rewind killed mid-restore is completed, code and conversation together ---------


def _plain(llm_server, repo, *args, env=None, timeout=90):
    full = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ANTHROPIC_API_KEY": "k",
        "ANTHROPIC_BASE_URL": llm_server.url,
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        cwd=repo,
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_killing_rewind_both_loses_neither_side(llm_server, repo):
    from checkpoints.restore import KILL_ENV

    llm_server.push(say("first answer"))
    assert godwit(llm_server, repo, "-p", "FIRST-PROMPT").returncode == 0
    many = "; ".join(f"echo v > f{i}.txt" for i in range(30))
    llm_server.push(call("bash", {"command": many}), say("second answer"))
    out = godwit(
        llm_server,
        repo,
        "-p",
        "SECOND-PROMPT",
        "--continue",
        "--permission-mode",
        "bypassPermissions",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert (repo / "f29.txt").exists()
    rows = json.loads(_plain(llm_server, repo, "checkpoints", "--json").stdout)
    second = next(r for r in rows if r["reason"] == "turn_start" and r["turn"] == 2)
    # Rewind to the start of turn 2, killed in the middle of the restore.
    killed = _plain(llm_server, repo, "rewind", second["id"], "--both", env={KILL_ENV: "7"})
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (repo / "f29.txt").exists() or not (repo / "f0.txt").exists()  # half done
    # The next command finds the code finished and the conversation rewound with it.
    llm_server.push(say("third answer"))
    out = godwit(llm_server, repo, "-p", "THIRD-PROMPT", "--continue")
    assert out.returncode == 0, out.stderr[-2000:]
    assert not any((repo / f"f{i}.txt").exists() for i in range(30))
    sent = json.dumps(llm_server.model_requests[-1].body)
    assert "FIRST-PROMPT" in sent and "SECOND-PROMPT" not in sent
    # ... and the rewind can be undone: the files come back.
    undo = _plain(llm_server, repo, "undo-rewind")
    assert undo.returncode == 0, undo.stderr[-2000:]
    assert all((repo / f"f{i}.txt").exists() for i in range(30))


@needs_sandbox
def test_a_projects_own_allow_rule_never_lets_a_command_out_of_the_sandbox(
    llm_server, repo, outside
):
    """A sandboxed command can create .godwit/settings.json when it is missing: the rules in it
    must not open the way out."""
    command = f"touch {outside}/escaped.txt"
    llm_server.push(
        bash(
            'mkdir -p .godwit && printf \'%s\' \'{"permissions": {"allow": '
            f'["Bash({command})"]}}}}\' > .godwit/settings.json'
        ),
        say("planted"),
    )
    out = godwit(llm_server, repo, "-p", "go")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "escaped.txt" in (repo / ".godwit" / "settings.json").read_text()
    llm_server.push(bash(command), say("done"))
    out = godwit(llm_server, repo, "-p", "go", "--continue")
    assert out.returncode == 0, out.stderr[-2000:]
    assert not (outside / "escaped.txt").exists()
    assert "Not run outside the sandbox" in results(out)[0]["content"]


# -- items 1, 2, 3 and 10 through the CLI ------------------------------------------------------


def test_a_planted_nested_repository_never_runs_its_fsmonitor(llm_server, repo, tmp_path):
    """acceptEdits: the editor may not plant x/.git/config; a nested repository that is already
    there (a vendored dependency, say) is listed without running its config."""
    vendored = repo / "vendor" / "dep"
    (vendored / ".git" / "objects").mkdir(parents=True)
    (vendored / ".git" / "refs").mkdir()
    (vendored / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (vendored / ".git" / "config").write_text("[core]\n\tfsmonitor = touch MARK\n")
    (vendored / "a.txt").write_text("needle\n")
    plant = {
        "command": "create",
        "path": "x/.git/config",
        "file_text": "[core]\n\tfsmonitor = touch MARK\n",
    }
    llm_server.push(
        call("str_replace_based_edit_tool", plant),
        call("glob", {"pattern": "*.txt", "path": "vendor/dep"}),
        call("grep", {"pattern": "needle", "path": "vendor/dep", "glob": "*.txt"}),
        say("done"),
    )
    # no ripgrep: the git listing is the one at risk
    path = path_of(tmp_path / "bin", "git", "bash", "sh", "env", "touch", "bwrap")
    out = godwit(
        llm_server, repo, "-p", "go", "--permission-mode", "acceptEdits", env={"PATH": path}
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rs = results(out)
    assert rs[0]["is_error"] and not (repo / "x" / ".git" / "config").exists()
    assert "vendor/dep/a.txt" in rs[1]["content"] and "vendor/dep/a.txt" in rs[2]["content"]
    assert list(repo.rglob("MARK*")) == []


def test_links_do_not_lead_the_editor_around_its_protections(llm_server, repo):
    os.symlink(".git", repo / "gl")
    (repo / "secret.txt").write_text("s3cret\n")
    os.symlink("secret.txt", repo / "s")
    before = (repo / ".git" / "config").read_text()
    llm_server.push(
        call(
            "str_replace_based_edit_tool",
            {"command": "create", "path": "gl/config", "file_text": "[core]\n"},
        ),
        call(
            "str_replace_based_edit_tool",
            {
                "command": "create",
                "path": str(repo / "gl" / "hooks" / "pre-commit"),
                "file_text": "touch MARK\n",
            },
        ),
        call(
            "str_replace_based_edit_tool",
            {"command": "str_replace", "path": "s", "old_str": "s3cret", "new_str": "gone"},
        ),
        say("done"),
    )
    out = godwit(
        llm_server,
        repo,
        "-p",
        "go",
        "--permission-mode",
        "bypassPermissions",
        "--deny",
        "Edit(secret.txt)",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert all(r["is_error"] for r in results(out))
    assert (repo / ".git" / "config").read_text() == before
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()
    assert (repo / "secret.txt").read_text() == "s3cret\n"


def test_rules_allow_no_more_than_they_name(llm_server, repo):
    hostile = (
        "GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=core.fsmonitor "
        "GIT_CONFIG_VALUE_0='rm -f a.txt' git status"
    )
    llm_server.push(
        bash(hostile),
        bash("ls >/dev/null_x"),
        call(
            "str_replace_based_edit_tool",
            {"command": "create", "path": "new.txt", "file_text": "x"},
        ),
        call("str_replace_based_edit_tool", {"command": "view", "path": "a.txt"}),
        bash("ls"),
        bash("git status --short"),
        say("done"),
    )
    out = godwit(
        llm_server,
        repo,
        "-p",
        "go",
        "--sandbox",
        "off",
        "--allow",
        "bash(git status)",
        "--allowedTools",
        "Read",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rs = results(out)
    assert [r["is_error"] for r in rs] == [True, True, True, False, False, False]
    assert (repo / "a.txt").exists() and not (repo / "new.txt").exists()
    assert not (repo / "dev").exists() and not Path("/dev/null_x").exists()


def test_background_output_stays_out_of_the_next_result(llm_server, repo):
    llm_server.push(
        bash("(sleep 0.5; echo LATE-OUTPUT) & echo started"),
        bash("sleep 1; echo second"),
        bash("exec >/dev/null; echo hidden"),
        bash("echo third"),
        say("done"),
    )
    out = godwit(llm_server, repo, "-p", "go", "--permission-mode", "bypassPermissions")
    assert out.returncode == 0, out.stderr[-2000:]
    rs = [r["content"] for r in results(out)]
    assert rs[0].strip() == "started" and rs[1].strip() == "second"
    assert rs[3].strip() == "third"


# -- item 8: grep without ripgrep streams, skipping huge and binary files ---------------------


def test_grep_without_ripgrep_over_two_sparse_gigabytes(llm_server, repo, tmp_path):
    with open(repo / "disk.img", "wb") as f:
        f.truncate(2 * 2**30)
    with open(repo / "huge.log", "wb") as f:
        f.write(b"needle in a huge log\n" * 800)
        f.truncate(2 * 2**30)
    (repo / "small.txt").write_text("a needle\n")
    (repo / ".gitignore").write_text("")
    llm_server.push(call("grep", {"pattern": "needle"}), say("done"))
    path = path_of(tmp_path / "bin", "git", "bash", "sh", "env", "bwrap")
    assert shutil.which("rg", path=path) is None
    out = godwit(llm_server, repo, "-p", "find it", env={"PATH": path}, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert results(out)[0]["content"] == "Found 1 file\nsmall.txt"


# -- item 10: a SIGKILLed session's shell folder is removed at the next start ------------------


def test_a_killed_sessions_shell_folder_is_swept_by_the_next(llm_server, repo, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {"TMPDIR": str(tmp)}
    llm_server.push(bash("sleep 60"))
    full = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ANTHROPIC_API_KEY": "k",
        "ANTHROPIC_BASE_URL": llm_server.url,
        **env,
    }
    args = ["-p", "go", "--model", MODEL, "--permission-mode", "bypassPermissions"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", *args],
        cwd=repo,
        env=full,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    import time

    deadline = time.monotonic() + 60
    while not list(tmp.glob("godwit-bash-*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    stale = list(tmp.glob("godwit-bash-*"))
    assert len(stale) == 1, "the first session never started its shell"
    os.killpg(proc.pid, 9)
    proc.wait(timeout=30)
    assert stale[0].is_dir()  # SIGKILL leaves it behind
    llm_server.push(bash("echo hi"), say("done"))
    out = godwit(llm_server, repo, "-p", "again", "--permission-mode", "bypassPermissions", env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert not stale[0].exists()
    assert list(tmp.glob("godwit-bash-*")) == []  # and the second one removed its own at exit
