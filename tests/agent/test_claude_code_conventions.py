"""Claude Code users' habits through the real `godwit` command (issue 11): the default model and
its aliases, `-p` as a switch with piped input, Claude Code's flags, the project root and its
instruction files, settings layers, UTF-8-safe JSON. Real subprocesses, the real SDKs, the fake
Messages / Chat Completions server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.providers.aliases import newest, resolve, sdk_model_ids
from tests.fakes.replies import call, say

ROOT = Path(__file__).resolve().parents[2]
GODWIT = [sys.executable, "-m", "agent"]


def godwit(*args, cwd, server=None, input=None, timeout=90, env=None):
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    if server is not None:
        full.update(
            ANTHROPIC_BASE_URL=server.url,
            ANTHROPIC_API_KEY="sk-test",
            OPENAI_BASE_URL=server.openai_url,
            OPENAI_API_KEY="sk-test",
        )
    return subprocess.run(
        [*GODWIT, *args],
        cwd=cwd,
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full,
    )


def posts(server):
    return [r for r in server.requests if r.method == "POST" and "count_tokens" not in r.path]


def system_text(request) -> str:
    system = request.body.get("system")
    if isinstance(system, list):
        return "\n".join(block.get("text", "") for block in system)
    return system or ""


def user_texts(request) -> list[str]:
    out = []
    for message in request.body["messages"]:
        if message["role"] != "user":
            continue
        content = message["content"]
        if isinstance(content, str):
            out.append(content)
        else:
            out.extend(b.get("text", "") for b in content if b.get("type") == "text")
    return out


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / "pkg" / "deep").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "a.txt").write_text("alpha\n")
    return root


# --- the default model and the aliases -------------------------------------------------------


def test_default_model_is_the_newest_sonnet_the_sdk_lists(repo, llm_server):
    llm_server.push(say("hello"))
    out = godwit("-p", "hi", cwd=repo, server=llm_server)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hello"
    expected = newest("sonnet", sdk_model_ids())
    assert expected and posts(llm_server)[0].body["model"] == expected
    assert "retire" not in out.stderr and "deprecat" not in out.stderr.lower()


def test_aliases_resolve_to_the_newest_of_their_family(repo, llm_server):
    ids = sdk_model_ids()
    for spec, family in (
        ("sonnet", "sonnet"),
        ("opus", "opus"),
        ("haiku", "haiku"),
        ("anthropic:opus", "opus"),
        ("anthropic:haiku", "haiku"),
    ):
        llm_server.push(say("ok"))
        out = godwit("-p", "hi", "--model", spec, cwd=repo, server=llm_server)
        assert out.returncode == 0, (spec, out.stderr)
        assert posts(llm_server)[-1].body["model"] == newest(family, ids), spec
    # Sonnet 4.5 stays selectable by its id.
    llm_server.push(say("ok"))
    out = godwit("-p", "hi", "--model", "anthropic:claude-sonnet-4-5", cwd=repo, server=llm_server)
    assert out.returncode == 0 and posts(llm_server)[-1].body["model"] == "claude-sonnet-4-5"


def test_alias_resolution_rules():
    ids = [
        "claude-haiku-4-5-20251001",
        "claude-haiku-4-5",
        "claude-sonnet-5",
        "claude-sonnet-4-6",
        "claude-sonnet-5-5",
        "claude-opus-4-8",
        "claude-mythos-preview",
    ]
    assert newest("haiku", ids) == "claude-haiku-4-5"
    assert newest("sonnet", ids) == "claude-sonnet-5-5"
    assert newest("opus", ids) == "claude-opus-4-8"
    assert resolve("SONNET", ids) == "claude-sonnet-5-5"
    assert resolve("claude-sonnet-4-5", ids) == "claude-sonnet-4-5"
    assert resolve("opus", []) == "claude-opus-5-5"  # fallback when the SDK lists none


def test_continue_keeps_the_sessions_own_model_and_provider(repo, llm_server):
    llm_server.push(say("first"), say("second"), say("third"))
    out = godwit("-p", "one", "--model", "openai:gpt-test", cwd=repo, server=llm_server)
    assert out.returncode == 0, out.stderr
    out = godwit("--continue", "-p", "two", cwd=repo, server=llm_server)
    assert out.returncode == 0, out.stderr
    second = posts(llm_server)[-1]
    assert second.path.endswith("/chat/completions") and second.body["model"] == "gpt-test"
    out = godwit("--continue", "-p", "three", "--model", "haiku", cwd=repo, server=llm_server)
    assert out.returncode == 0, out.stderr
    third = posts(llm_server)[-1]
    assert third.path == "/v1/messages" and third.body["model"].startswith("claude-haiku")


# --- -p as a switch ---------------------------------------------------------------------------


def test_print_is_a_switch_and_reads_piped_input(repo, llm_server):
    llm_server.push(say("a"), say("b"), say("c"), say("d"))
    out = godwit("-p", "as before", cwd=repo, server=llm_server)
    assert out.returncode == 0, out.stderr
    assert user_texts(posts(llm_server)[-1])[-1] == "as before"
    out = godwit("-p", cwd=repo, server=llm_server, input="only from stdin\n")
    assert out.returncode == 0, out.stderr
    assert "only from stdin" in user_texts(posts(llm_server)[-1])[-1]
    out = godwit(
        "-p",
        "why does this fail",
        cwd=repo,
        server=llm_server,
        input="Traceback: ZeroDivisionError\n",
    )
    assert out.returncode == 0, out.stderr
    sent = user_texts(posts(llm_server)[-1])[-1]
    assert "why does this fail" in sent and "ZeroDivisionError" in sent
    out = godwit("--print", "--output-format", "json", "long form", cwd=repo, server=llm_server)
    assert out.returncode == 0 and json.loads(out.stdout)["result"] == "d"
    empty = godwit("-p", cwd=repo, server=llm_server)
    assert empty.returncode == 2 and "prompt" in empty.stderr


# --- Claude Code's flags ----------------------------------------------------------------------


def test_allowed_tools_take_several_values(repo, llm_server):
    llm_server.push(call("bash", {"command": "ls"}), say("listed"))
    out = godwit(
        "--allowedTools",
        "bash(echo hi)",
        "bash(ls)",
        "-p",
        "the prompt",
        "--output-format",
        "events",
        cwd=repo,
        server=llm_server,
    )
    assert out.returncode == 0, out.stderr
    first = posts(llm_server)[0]
    assert user_texts(first)[-1] == "the prompt"
    results = [json.loads(line) for line in out.stdout.splitlines()]
    tool = [e for e in results if e["type"] == "tool_result"]
    assert tool and not tool[0]["is_error"] and "a.txt" in tool[0]["content"]
    # Values that are not rules end the list: the prompt after them is not swallowed.
    llm_server.push(say("ok"))
    out = godwit(
        "-p", "--disallowedTools", "bash(rm)", "bash(curl)", "tidy up", cwd=repo, server=llm_server
    )
    assert out.returncode == 0, out.stderr
    assert user_texts(posts(llm_server)[-1])[-1] == "tidy up"


def test_append_system_prompt_appends_and_system_prompt_replaces(repo, llm_server, godwit_home):
    (godwit_home / "settings.json").write_text(json.dumps({"system_prompt": "FROM-SETTINGS"}))
    llm_server.push(say("a"), say("b"))
    out = godwit("-p", "x", "--append-system-prompt", "FROM-FLAG", cwd=repo, server=llm_server)
    assert out.returncode == 0, out.stderr
    system = system_text(posts(llm_server)[-1])
    assert "FROM-SETTINGS" in system and "FROM-FLAG" in system
    assert system.index("FROM-SETTINGS") < system.index("FROM-FLAG")
    default_start = system[:60]
    out = godwit("-p", "x", "--system-prompt", "YOU ARE A TEST", cwd=repo, server=llm_server)
    assert out.returncode == 0, out.stderr
    replaced = system_text(posts(llm_server)[-1])
    assert replaced.startswith("YOU ARE A TEST") and default_start not in replaced


def test_settings_file_and_json(repo, llm_server, tmp_path):
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"model": "anthropic:haiku"}))
    llm_server.push(say("a"), say("b"))
    out = godwit("-p", "x", "--settings", str(extra), cwd=repo, server=llm_server)
    assert out.returncode == 0, out.stderr
    assert posts(llm_server)[-1].body["model"].startswith("claude-haiku")
    out = godwit("-p", "x", "--settings", '{"model": "opus"}', cwd=repo, server=llm_server)
    assert out.returncode == 0, out.stderr
    assert posts(llm_server)[-1].body["model"].startswith("claude-opus")
    bad = godwit("-p", "x", "--settings", str(tmp_path / "missing.json"), cwd=repo)
    assert (
        bad.returncode in (1, 2) and "missing.json" in bad.stderr and "Traceback" not in bad.stderr
    )


def test_add_dir_lets_tools_reach_another_folder(repo, llm_server, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.md").write_text("the other folder\n")
    view = {"command": "view", "path": str(other / "notes.md")}
    llm_server.push(call("str_replace_based_edit_tool", view), say("seen"))
    out = godwit("-p", "read it", "--output-format", "events", cwd=repo, server=llm_server)
    result = next(json.loads(l) for l in out.stdout.splitlines() if '"tool_result"' in l)
    assert result["is_error"], "without --add-dir the folder is out of reach"
    llm_server.push(call("str_replace_based_edit_tool", view), say("seen"))
    out = godwit(
        "-p",
        "read it",
        "--add-dir",
        str(other),
        "--output-format",
        "events",
        cwd=repo,
        server=llm_server,
    )
    assert out.returncode == 0, out.stderr
    result = next(json.loads(l) for l in out.stdout.splitlines() if '"tool_result"' in l)
    assert not result["is_error"] and "the other folder" in result["content"]


def test_version_and_python_m_agent(repo):
    out = godwit("--version", cwd=repo)
    assert (
        out.returncode == 0
        and out.stdout.startswith("godwit ")
        and out.stdout.split()[1][0].isdigit()
    )
    assert godwit("-v", cwd=repo).stdout == out.stdout
    helped = godwit("--help", cwd=repo)
    assert helped.returncode == 0 and "--allowedTools" in helped.stdout


def test_did_you_mean_a_subcommand(repo, godwit_home):
    for word, meant in (("sesions", "sessions"), ("checkpoint", "checkpoints"), ("dif", "diff")):
        out = godwit(word, cwd=repo)
        assert out.returncode == 2, out
        assert f"did you mean `godwit {meant}`?" in out.stderr.lower()
    assert not (godwit_home / "sessions").exists() or not any(
        (godwit_home / "sessions").rglob("*.jsonl")
    )


# --- project root, instruction files, settings layers -----------------------------------------


def test_subfolder_uses_the_repository_root(repo, llm_server, godwit_home):
    (repo / "AGENTS.md").write_text("ROOT-AGENTS: run make test.\n")
    (repo / "pkg" / "CLAUDE.md").write_text("PKG-CLAUDE: prefer small functions.\n")
    (repo / "pkg" / "deep" / "AGENTS.md").write_text("DEEP-AGENTS: here be dragons.\n")
    (godwit_home / "AGENTS.md").write_text("USER-LEVEL: answer briefly.\n")
    llm_server.push(call("bash", {"command": "pwd"}), say("done"), say("again"))
    work = repo / "pkg" / "deep"
    out = godwit(
        "-p",
        "where am I",
        "--permission-mode",
        "bypassPermissions",
        "--output-format",
        "events",
        cwd=work,
        server=llm_server,
    )
    assert out.returncode == 0, out.stderr
    system = system_text(posts(llm_server)[0])
    order = [system.index(m) for m in ("USER-LEVEL", "ROOT-AGENTS", "PKG-CLAUDE", "DEEP-AGENTS")]
    assert order == sorted(order), system
    result = next(json.loads(l) for l in out.stdout.splitlines() if '"tool_result"' in l)
    assert result["content"].strip().endswith(str(work))  # the shell starts where the user is
    # From the root: the same project, so the same session list and checkpoint store.
    listing = godwit("sessions", "--json", cwd=repo)
    assert len(json.loads(listing.stdout)) == 1
    out = godwit("-p", "again", cwd=repo / "pkg", server=llm_server)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(godwit("sessions", "--json", cwd=repo / "pkg").stdout)) == 2
    stores = [p for p in (godwit_home / "checkpoints").iterdir() if p.is_dir()]
    assert len(stores) == 1, stores


def test_agents_md_and_claude_md_are_both_read_and_copies_once(repo, llm_server):
    (repo / "AGENTS.md").write_text("ROOT-AGENTS: run make test.\n")
    (repo / "CLAUDE.md").write_text("ROOT-CLAUDE: use the fixtures.\n")
    linked, imported, copied = (repo / "pkg", repo / "pkg" / "deep", repo / "pkg" / "deep" / "x")
    copied.mkdir()
    (linked / "AGENTS.md").write_text("PKG-ONCE: linked.\n")
    (linked / "CLAUDE.md").symlink_to("AGENTS.md")
    (imported / "AGENTS.md").write_text("DEEP-ONCE: imported.\n")
    (imported / "CLAUDE.md").write_text("@AGENTS.md\n")
    (copied / "AGENTS.md").write_text("X-ONCE: the same text.\n")
    (copied / "CLAUDE.md").write_text("X-ONCE: the same text.\n\n")
    llm_server.push(say("done"))
    out = godwit("-p", "hi", cwd=copied, server=llm_server)
    assert out.returncode == 0, out.stderr
    system = system_text(posts(llm_server)[0])
    marks = ("ROOT-AGENTS", "ROOT-CLAUDE", "PKG-ONCE", "DEEP-ONCE", "X-ONCE")
    assert [system.count(m) for m in marks] == [1] * len(marks), system
    order = [system.index(m) for m in marks]
    assert order == sorted(order), system
    assert "@AGENTS.md" not in system


def test_local_settings_sit_between_project_and_command_line(repo, llm_server):
    (repo / ".godwit").mkdir()
    (repo / ".godwit" / "settings.json").write_text(json.dumps({"model": "anthropic:opus"}))
    (repo / ".godwit" / "settings.local.json").write_text(
        json.dumps({"model": "anthropic:haiku", "env": {"GODWIT_TEST_ENV": "from-settings"}})
    )
    llm_server.push(call("bash", {"command": "echo value=$GODWIT_TEST_ENV"}), say("ok"), say("ok"))
    # A project's env (local file included) takes effect once approved (agent/project_trust.py).
    assert godwit("trust", cwd=repo).returncode == 0
    out = godwit(
        "-p",
        "x",
        "--permission-mode",
        "bypassPermissions",
        "--output-format",
        "events",
        cwd=repo,
        server=llm_server,
    )
    assert out.returncode == 0, out.stderr
    assert posts(llm_server)[0].body["model"].startswith("claude-haiku")
    result = next(json.loads(l) for l in out.stdout.splitlines() if '"tool_result"' in l)
    assert "value=from-settings" in result["content"]
    out = godwit("-p", "x", "--model", "sonnet", cwd=repo, server=llm_server)
    assert posts(llm_server)[-1].body["model"].startswith("claude-sonnet")


# --- output that scripts read -----------------------------------------------------------------


def test_checkpoints_json_is_utf8_with_non_utf8_file_names(repo, llm_server):
    odd = os.fsencode(str(repo)) + b"/caf\xe9.txt"
    with open(odd, "wb") as f:
        f.write(b"latin-1 name\n")
    # The turn changes the oddly named file, so the checkpoint after it lists it.
    command = "printf more >> \"$(printf 'caf\\351.txt')\"; echo changed > a.txt"
    llm_server.push(call("bash", {"command": command}), say("done"))
    out = godwit(
        "-p", "edit", "--permission-mode", "bypassPermissions", cwd=repo, server=llm_server
    )
    assert out.returncode == 0, out.stderr
    raw = subprocess.run(
        [*GODWIT, "checkpoints", "--json"],
        cwd=repo,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert raw.returncode == 0, raw.stderr
    rows = json.loads(raw.stdout.decode("utf-8"))  # strict UTF-8
    assert rows and all("id" in r for r in rows)
    paths = {f["path"] for r in rows for f in r.get("files", [])}
    assert "caf\ufffd.txt" in paths, paths  # spelled as agent.textsafe spells it
    diff = subprocess.run(
        [*GODWIT, "diff", rows[-1]["id"]],
        cwd=repo,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    diff.stdout.decode("utf-8")


# --- progress on long work --------------------------------------------------------------------


def test_first_snapshot_of_a_large_repository_reports_progress(repo, tmp_path):
    for i in range(1200):
        folder = repo / f"d{i % 12}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{i}.txt").write_text(f"file {i}\n")
    model = tmp_path / "s.json"
    model.write_text(json.dumps([{"text": "ok"}]))
    out = godwit("-p", "hi", "--model", f"scripted:{model}", "--output-format", "events", cwd=repo)
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    progress = [e for e in events if e["type"] == "progress" and e["task"] == "snapshot"]
    assert progress and progress[-1]["finished"] and progress[-1]["done"] == progress[-1]["total"]
    assert progress[-1]["total"] >= 1200
    # Claude Code's stream-json carries it as a system notice.
    (repo / "d0" / "more.txt").write_text("x\n" * 10)
    for i in range(600):
        (repo / "d2" / f"g{i}.txt").write_text(f"new {i}\n")
    out = godwit(
        "-p", "hi", "--model", f"scripted:{model}", "--output-format", "stream-json", cwd=repo
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    notices = [e for e in lines if e["type"] == "system" and e.get("subtype") == "progress"]
    assert notices and notices[-1]["finished"] and notices[-1]["task"] == "snapshot"
    text = godwit("-p", "hi", "--model", f"scripted:{model}", cwd=repo / "d1")
    assert text.returncode == 0 and "Snapshotting" not in text.stderr  # nothing new to store
