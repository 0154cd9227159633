"""bash: real shells, real process groups."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import tools
from tools.base import ToolContext
from tools.bash import BashTool, group_alive

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def bash():
    return BashTool()


@pytest.fixture
def sctx(tree: Path):
    c = ToolContext(cwd=tree)
    yield c
    tools.close_all(c)


def sh(bash: BashTool, ctx: ToolContext, command: str, **kw):
    return bash.run({"command": command, **kw}, ctx)


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in (b"Z", b"X")


def test_spec_and_readonly(bash):
    assert bash.anthropic_spec() == {"type": "bash_20250124", "name": "bash"}
    params = bash.openai_spec()["function"]["parameters"]
    assert set(params["properties"]) == {"command", "restart", "timeout"}
    assert params["properties"]["timeout"]["maximum"] == 600
    # Only lone commands from the strict read-only list (tools/readonly_shell.py) are read-only.
    assert bash.is_read_only({"command": "ls"})
    assert not bash.is_read_only({"command": "ls > x"})
    assert not bash.is_read_only({"command": "touch x"})


def test_output_and_exit_code(bash, sctx):
    r = sh(bash, sctx, "echo hello; echo oops >&2")
    assert not r.is_error and r.content == "hello\noops\n"
    r = sh(bash, sctx, "echo partial; exit_with() { return $1; }; exit_with 3")
    assert not r.is_error and r.content == "partial\n[exit code 3]"
    r = sh(bash, sctx, "true")
    assert r.content == "(no output)"
    r = sh(bash, sctx, "false")
    assert r.content == "[exit code 1]" and not r.is_error


def test_starts_in_work_tree_and_persists_cwd_and_env(bash, sctx, tree):
    assert sh(bash, sctx, "pwd").content.strip() == os.path.realpath(tree)
    (tree / "sub").mkdir()
    sh(bash, sctx, "cd sub && export GODWIT_T=42 && LOCAL_ONLY=1")
    assert sh(bash, sctx, "pwd").content.strip() == os.path.realpath(tree / "sub")
    assert sh(bash, sctx, 'echo "$GODWIT_T/$LOCAL_ONLY"').content == "42/1\n"
    assert sh(bash, sctx, "bash -c 'echo $GODWIT_T'").content == "42\n"  # exported to children


def test_environment(bash, sctx, monkeypatch):
    monkeypatch.setenv("GODWIT_INHERITED", "yes")
    out = sh(bash, sctx, 'echo "$GIT_PAGER $PAGER $TERM $GODWIT_INHERITED"').content
    assert out == "cat cat dumb yes\n"


def test_stdin_closed(bash, sctx):
    t = time.monotonic()
    r = sh(bash, sctx, "cat; read x; echo rc=$?", timeout=10)
    assert time.monotonic() - t < 3
    assert r.content == "rc=1\n"
    # and the shell still works: the commands did not eat its input
    assert sh(bash, sctx, "echo alive").content == "alive\n"


def test_multiline_heredoc_and_syntax_error(bash, sctx):
    r = sh(bash, sctx, "cat <<'EOF'\nline $1\nEOF\necho after")
    assert r.content == "line $1\nafter\n"
    r = sh(bash, sctx, "echo 'unterminated")
    assert "bash: line 1: unexpected EOF" in r.content and "[exit code 2]" in r.content
    assert "godwit-bash" not in r.content  # errors are worded as bash's, not the command file's
    assert sh(bash, sctx, "echo still fine").content == "still fine\n"


def test_command_not_found_is_output(bash, sctx):
    r = sh(bash, sctx, "no_such_command_godwit")
    assert (
        "no_such_command_godwit: command not found" in r.content and "[exit code 127]" in r.content
    )


def test_timeout_kills_group_including_background_grandchild(bash, sctx, tree):
    sh(bash, sctx, "cd / && export BEFORE=1")
    t = time.monotonic()
    r = sh(bash, sctx, "echo started; sleep 100 & echo bg=$!; sleep 100", timeout=1)
    took = time.monotonic() - t
    assert r.is_error
    assert took < 4, took
    assert "started" in r.content
    assert "Command timed out after 1 s" in r.content
    assert "new shell" in r.content and "reset" in r.content
    bg = int(r.content.split("bg=")[1].split()[0])
    deadline = time.monotonic() + 3
    while _running(bg) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(bg), "the backgrounded sleep survived"
    # the next call gets a fresh shell: cwd and env reset
    assert sh(bash, sctx, "pwd").content.strip() == os.path.realpath(tree)
    assert sh(bash, sctx, 'echo "[$BEFORE]"').content == "[]\n"


def test_timeout_kills_nohup_style_subshell(bash, sctx):
    r = sh(bash, sctx, "( sleep 100 & echo sub=$! ); sleep 100", timeout=1)
    pid = int(r.content.split("sub=")[1].split()[0])
    deadline = time.monotonic() + 3
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(pid)


def test_cancel_from_another_thread(bash, sctx):
    def interrupt():
        time.sleep(0.5)
        sctx.cancel.set()

    threading.Thread(target=interrupt).start()
    t = time.monotonic()
    r = sh(bash, sctx, "echo before; sleep 30; echo never")
    took = time.monotonic() - t
    assert r.is_error
    assert took < 3, took
    assert r.content.startswith("before\n")
    assert "interrupted" in r.content and "never" not in r.content
    sctx.cancel.clear()
    assert sh(bash, sctx, "echo next").content == "next\n"


def test_cancel_already_set(bash, sctx):
    sctx.cancel.set()
    r = sh(bash, sctx, "echo hi > ran.txt")
    assert r.is_error and "not run" in r.content


def test_output_capped_head_and_tail(bash, sctx):
    r = sh(bash, sctx, "seq 1 100000")
    assert not r.is_error
    assert len(r.content) < 31_000
    assert r.content.startswith("1\n2\n3\n")
    assert r.content.rstrip().endswith("100000")
    assert "output truncated" in r.content and "characters" in r.content and "lines" in r.content
    bash_small = BashTool(max_output_chars=1000)
    r = sh(bash_small, sctx, "seq 1 1000; (exit 4)")
    assert len(r.content) < 1400 and r.content.endswith("[exit code 4]")


def test_huge_output_bounded_memory(bash, sctx):
    # 20 MB through the pipe: the middle is dropped as it arrives, counts are exact-ish
    r = sh(
        bash, sctx, "head -c 20000000 /dev/zero | tr '\\0' 'x' | fold -w 99; echo END", timeout=60
    )
    assert r.content.rstrip().endswith("END")
    omitted = int(r.content.split("output truncated: ")[1].split()[0])
    assert 19_900_000 < omitted < 20_300_000


def test_restart(bash, sctx, tree):
    sh(bash, sctx, "cd / && export X=1")
    r = bash.run({"restart": True}, sctx)
    assert not r.is_error and "restarted" in r.content
    assert sh(bash, sctx, 'pwd; echo "[$X]"').content == f"{os.path.realpath(tree)}\n[]\n"
    r = bash.run({"restart": True, "command": "echo after-restart"}, sctx)
    assert "restarted" in r.content and r.content.endswith("after-restart\n")


def test_exit_restarts_shell(bash, sctx, tree):
    sh(bash, sctx, "cd /")
    r = sh(bash, sctx, "echo bye; exit 5")
    assert not r.is_error and "bye" in r.content and "shell exited (exit code 5)" in r.content
    assert sh(bash, sctx, "pwd").content.strip() == os.path.realpath(tree)


def test_exit_with_background_job_does_not_hang(bash, sctx):
    t = time.monotonic()
    r = sh(bash, sctx, "sleep 100 & exit 0", timeout=20)
    assert time.monotonic() - t < 5
    assert "shell exited" in r.content


def test_argument_errors(bash, sctx):
    r = bash.run({}, sctx)
    assert r.is_error and "command is required" in r.content
    r = bash.run({"command": "   "}, sctx)
    assert r.is_error and "empty" in r.content
    r = bash.run({"command": "ls", "timeout": 601}, sctx)
    assert r.is_error and r.content.startswith("Invalid input for bash") and "timeout" in r.content
    r = bash.run({"command": "ls", "timeout": 0}, sctx)
    assert r.is_error


def test_close_all_kills_shell(bash, sctx):
    sh(bash, sctx, "true")
    shell = sctx.state["bash"]
    pgid = shell.pgid
    assert group_alive(pgid)
    tools.close_all(sctx)
    assert "bash" not in sctx.state
    assert not group_alive(pgid)
    tools.close_all(sctx)  # twice is fine
    BashTool.close(sctx)


def test_sessions_are_separate(bash, tree):
    a, b = ToolContext(cwd=tree), ToolContext(cwd=tree)
    try:
        sh(bash, a, "export WHO=a")
        assert sh(bash, b, 'echo "[$WHO]"').content == "[]\n"
        assert sh(bash, a, 'echo "[$WHO]"').content == "[a]\n"
    finally:
        tools.close_all(a)
        tools.close_all(b)


def test_binary_and_invalid_utf8_output(bash, sctx):
    r = sh(bash, sctx, "printf 'ok\\xff\\xfe\\n'")
    assert r.content.startswith("ok") and "\ufffd" in r.content


def test_missing_work_tree_is_a_result(bash, tmp_path):
    c = ToolContext(cwd=tmp_path / "gone")
    r = sh(bash, c, "pwd")
    assert r.is_error and "Could not start bash" in r.content
    tools.close_all(c)


def test_commands_do_not_outlive_a_killed_agent(tmp_path):
    """kill -9 of the agent leaves no command running to change the tree behind a resume."""
    import subprocess
    import sys
    import time

    pid_file = tmp_path / "pid"
    script = (
        f"import os, sys; from pathlib import Path; sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
        "from tools import BashTool, ToolContext\n"
        f"BashTool().run({{'command': 'sleep 300 >/dev/null 2>&1 & echo $! > {pid_file}'}}, ToolContext(cwd=Path({str(tmp_path)!r})))\n"
        "os.kill(os.getpid(), 9)\n"
    )
    subprocess.run([sys.executable, "-c", script])
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{child}").exists():
        state = (
            Path(f"/proc/{child}/stat").read_text().split()[2]
            if Path(f"/proc/{child}/stat").exists()
            else "X"
        )
        if state == "Z":
            break
        time.sleep(0.1)
    alive = (
        Path(f"/proc/{child}/stat").exists()
        and Path(f"/proc/{child}/stat").read_text().split()[2] != "Z"
    )
    assert not alive


def test_a_command_that_redirects_the_shells_stdout_does_not_hang(tmp_path):
    tool = BashTool()
    ctx = ToolContext(cwd=tmp_path)
    try:
        import time

        t0 = time.monotonic()
        first = tool.run({"command": "exec > /dev/null; echo hidden", "timeout": 20}, ctx)
        assert not first.is_error and "hidden" not in first.content
        assert time.monotonic() - t0 < 10
        second = tool.run({"command": "exec >&2; echo back", "timeout": 20}, ctx)
        assert "back" in second.content
    finally:
        BashTool.close(ctx)


# -- issue 14 item 10 ---------------------------------------------------------------------------


def test_background_output_never_lands_in_the_next_result(bash, sctx):
    r = sh(bash, sctx, "(sleep 0.3; echo LATE-BG) & echo now")
    assert r.content == "now\n"
    time.sleep(0.8)
    r = sh(bash, sctx, "echo next")
    assert r.content == "next\n"
    # A chatty background job keeps running (its output is dropped, it gets no SIGPIPE).
    sh(bash, sctx, "(for i in $(seq 50); do echo tick$i; sleep 0.02; done; touch bg-done) &")
    for _ in range(5):
        assert "tick" not in sh(bash, sctx, "echo quiet").content
    time.sleep(1.5)
    assert sh(bash, sctx, "ls bg-done").content == "bg-done\n"


def test_exec_redirect_silences_only_its_own_command(bash, sctx):
    r = sh(bash, sctx, "exec > /dev/null 2>&1; echo hidden")
    assert "hidden" not in r.content
    assert sh(bash, sctx, "echo visible").content == "visible\n"
    assert sh(bash, sctx, "echo err >&2").content == "err\n"


def test_stale_shell_folders_of_dead_owners_are_removed(tmp_path):
    import subprocess
    import sys
    import tempfile

    from tools.bash_shell import sweep_stale_dirs

    tmp = tempfile.gettempdir()
    # A Godwit process that died with SIGKILL leaves its folder behind.
    script = (
        f"import os, sys; from pathlib import Path; sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
        "from tools import BashTool, ToolContext\n"
        f"c = ToolContext(cwd=Path({str(tmp_path)!r})); BashTool().run({{'command': 'true'}}, c)\n"
        "print(c.state['bash'].tmpdir, flush=True); os.kill(os.getpid(), 9)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    stale = out.stdout.strip()
    assert stale.startswith(os.path.join(tmp, "godwit-bash-")) and os.path.isdir(stale)
    # A live owner's folder (this process's own shell) is kept; a folder without an owner
    # file is not ours to judge.
    live_tool, live_ctx = BashTool(), ToolContext(cwd=tmp_path)
    unowned = tempfile.mkdtemp(prefix="godwit-bash-")
    try:
        live_tool.run({"command": "true"}, live_ctx)
        live = live_ctx.state["bash"].tmpdir
        removed = sweep_stale_dirs()
        assert stale in removed and not os.path.exists(stale)
        assert os.path.isdir(live) and os.path.isdir(unowned)
    finally:
        tools.close_all(live_ctx)
        os.rmdir(unowned)
