"""MCP servers for real: the registries' servers over stdio, an HTTP server built with the `mcp`
package, and servers that hang, crash, send garbage or die; none may hang or crash Godwit."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from agent.mcp.config import parse_server
from agent.mcp.manager import McpManager
from agent.mcp.tools import McpTool, convert, mcp_tools
from tests.agent.mcp import servers
from tools.base import ToolContext

pytestmark = pytest.mark.timeout(120)


def manager(tmp_path: Path, entries: dict, **kw) -> McpManager:
    specs = [parse_server(name, entry, "flag") for name, entry in entries.items()]
    return McpManager(specs, cwd=tmp_path, **kw)


def tool(mgr: McpManager, name: str) -> McpTool:
    return next(t for t in mcp_tools(mgr) if t.name == name)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def wait_dead(pids: list[int], seconds: float = 8.0) -> list[int]:
    end = time.monotonic() + seconds
    while time.monotonic() < end and any(alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


def test_time_and_git_servers_from_pypi(tmp_path: Path) -> None:
    if not (shutil.which("mcp-server-time") and shutil.which("mcp-server-git")):
        pytest.skip("mcp-server-time / mcp-server-git not installed (pip install '.[test]')")
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "a.txt").write_text("hi\n")
    entries = {
        "time": {"command": "mcp-server-time"},
        "git": {"command": "mcp-server-git", "args": ["--repository", str(repo)]},
    }
    ctx = ToolContext(cwd=tmp_path)
    with manager(tmp_path, entries) as mgr:
        assert {s["name"]: s["state"] for s in mgr.status()} == {
            "time": "connected",
            "git": "connected",
        }
        names = {t.name for t in mcp_tools(mgr)}
        assert {"mcp__time__get_current_time", "mcp__git__git_status"} <= names
        spec = tool(mgr, "mcp__time__get_current_time").anthropic_spec()
        assert spec["input_schema"]["required"] == ["timezone"]
        result = tool(mgr, "mcp__time__get_current_time").run({"timezone": "UTC"}, ctx)
        assert not result.is_error and '"timezone": "UTC"' in result.content
        status = tool(mgr, "mcp__git__git_status").run({"repo_path": str(repo)}, ctx)
        assert not status.is_error and "a.txt" in status.content
        # A call the server rejects is an error result the model reads, not an exception.
        bad = tool(mgr, "mcp__git__git_status").run({}, ctx)
        assert bad.is_error and "repo_path" in bad.content


def test_results_text_image_and_error(tmp_path: Path) -> None:
    entries = {"good": servers.script(tmp_path, "good", servers.GOOD)}
    ctx = ToolContext(cwd=tmp_path)
    with manager(tmp_path, entries) as mgr:
        assert tool(mgr, "mcp__good__echo").run({"text": "hi"}, ctx).content == "echo: hi"
        out = convert(mgr.call("good", "picture", {}))
        assert out.images and out.images[0]["media_type"] == "image/png" and not out.is_error
        failed = tool(mgr, "mcp__good__fail").run({"reason": "no disk"}, ctx)
        assert failed.is_error and failed.content == "Error executing tool fail"


def test_env_of_a_stdio_server_is_expanded(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GODWIT_TEST_TOKEN", "s3cret")
    entry = servers.script(tmp_path, "good", servers.GOOD)
    entry["env"] = {"TOKEN": "${GODWIT_TEST_TOKEN}", "REGION": "${GODWIT_UNSET_REGION:-eu}"}
    with manager(tmp_path, {"good": entry}) as mgr:
        run = tool(mgr, "mcp__good__env").run
        ctx = ToolContext(cwd=tmp_path)
        assert run({"name": "TOKEN"}, ctx).content == "s3cret"
        assert run({"name": "REGION"}, ctx).content == "eu"


def test_bad_servers_fail_alone_and_in_bounded_time(tmp_path: Path) -> None:
    reports: list[tuple[str, str]] = []
    entries = {
        "good": servers.script(tmp_path, "good", servers.GOOD),
        "hang": servers.script(tmp_path, "hang", servers.HANG),
        "crash": servers.script(tmp_path, "crash", servers.CRASH),
        "garbage": servers.script(tmp_path, "garbage", servers.MALFORMED),
        "missing": {"command": "godwit-no-such-server-xyz"},
        "unset": {"command": "x", "env": {"K": "${GODWIT_SURELY_UNSET_VAR}"}},
    }
    started = time.monotonic()
    mgr = manager(
        tmp_path,
        entries,
        start_timeout=10,
        on_failure=lambda name, msg: reports.append((name, msg)),
    )
    try:
        mgr.start()
        took = time.monotonic() - started
        states = {s["name"]: s["state"] for s in mgr.status()}
        assert states == {
            "good": "connected",
            "hang": "failed",
            "crash": "failed",
            "garbage": "failed",
            "missing": "failed",
            "unset": "failed",
        }
        assert took < 20, took
        assert sorted(n for n, _ in reports) == ["crash", "garbage", "hang", "missing", "unset"]
        messages = dict(reports)
        assert "GITHUB_TOKEN is not set" in messages["crash"]
        assert "no answer in time" in messages["hang"]
        assert "GODWIT_SURELY_UNSET_VAR" in messages["unset"]
        assert "godwit-no-such-server-xyz" in messages["missing"]
        assert [t.server for t in mcp_tools(mgr)] == ["good"] * len(mcp_tools(mgr))
        assert mgr.take_reports() == reports and mgr.take_reports() == []
        ctx = ToolContext(cwd=tmp_path)
        assert tool(mgr, "mcp__good__echo").run({"text": "still"}, ctx).content == "echo: still"
    finally:
        begin = time.monotonic()
        mgr.close()
        assert time.monotonic() - begin < 15


def test_a_server_that_dies_is_reported_once_and_its_tools_go(tmp_path: Path) -> None:
    reports: list[tuple[str, str]] = []
    entries = {
        "good": servers.script(tmp_path, "good", servers.GOOD),
        "brief": servers.script(tmp_path, "brief", servers.EXIT_LATER),
    }
    ctx = ToolContext(cwd=tmp_path)
    with manager(
        tmp_path, entries, ping_interval=0.5, on_failure=lambda n, m: reports.append((n, m))
    ) as mgr:
        assert {s.name for s in mgr.connected()} == {"good", "brief"}
        # Dies in the middle of a call: the call is an error result, the server is failed.
        result = tool(mgr, "mcp__good__die").run({}, ctx)
        assert result.is_error and "good" in result.content
        # Exits by itself between calls: the watch notices it.
        end = time.monotonic() + 10
        while time.monotonic() < end and len(reports) < 2:
            time.sleep(0.1)
        assert sorted(n for n, _ in reports) == ["brief", "good"]
        assert mcp_tools(mgr) == []
        again = McpTool(mgr, "good", next(iter([t for t in []]), None) or _fake_tool("echo"))
        assert again.run({"text": "x"}, ctx).is_error
    assert sorted(n for n, _ in reports) == ["brief", "good"]  # still once each


def _fake_tool(name: str):
    from mcp_types import Tool

    return Tool(name=name, input_schema={"type": "object"})


def test_hanging_tool_call_is_bounded_and_interruptible(tmp_path: Path) -> None:
    body = servers.GOOD.replace(
        'app.run("stdio")',
        (
            '@app.tool()\ndef slow() -> str:\n    """Never answers."""\n'
            '    import time\n    time.sleep(600)\n    return "late"\n\napp.run("stdio")'
        ),
    )
    ctx = ToolContext(cwd=tmp_path)
    with manager(tmp_path, {"s": servers.script(tmp_path, "s", body)}, tool_timeout=2) as mgr:
        begin = time.monotonic()
        result = tool(mgr, "mcp__s__slow").run({}, ctx)
        assert result.is_error and "within 2 s" in result.content
        assert time.monotonic() - begin < 6
        timer = threading.Timer(0.5, ctx.cancel.set)
        timer.start()
        mgr.tool_timeout = 60
        begin = time.monotonic()
        result = tool(mgr, "mcp__s__slow").run({}, ctx)
        assert result.is_error and "interrupted" in result.content
        assert time.monotonic() - begin < 5


def test_close_leaves_no_process(tmp_path: Path) -> None:
    entry = servers.script(tmp_path, "good", servers.GOOD)
    pidfile = tmp_path / "pids"
    entry["env"] = {"PIDFILE": str(pidfile)}
    with manager(tmp_path, {"good": entry}) as mgr:
        assert mgr.connected()
        pids = [int(p) for p in pidfile.read_text().split()]
        assert all(alive(p) for p in pids)
    assert wait_dead(pids) == []


OWNER = """
import sys, time
from pathlib import Path
from agent.mcp.config import parse_server
from agent.mcp.manager import McpManager
entry = {"command": sys.executable, "args": [sys.argv[1]], "env": {"PIDFILE": sys.argv[2]}}
mgr = McpManager([parse_server("good", entry, "flag")], cwd=Path("."))
mgr.start()
print(mgr.status()[0]["state"], flush=True)
time.sleep(600)
"""


def test_kill_9_of_godwit_leaves_no_server(tmp_path: Path) -> None:
    server = tmp_path / "good.py"
    server.write_text(servers.GOOD)
    owner = tmp_path / "owner.py"
    owner.write_text(OWNER)
    pidfile = tmp_path / "pids"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(
        [sys.executable, str(owner), str(server), str(pidfile)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout.readline().strip() == "connected"
        pids = [int(p) for p in pidfile.read_text().split()]
        assert all(alive(p) for p in pids)
    finally:
        proc.kill()  # SIGKILL: no cleanup runs in the owner
        proc.wait()
    assert wait_dead(pids) == [], "the MCP server or its child outlived kill -9 of its owner"


def test_streamable_http_server_built_with_the_mcp_package(tmp_path: Path) -> None:
    import asyncio

    import uvicorn
    from mcp.server.mcpserver import MCPServer

    app = MCPServer("web")
    seen_headers: list[str] = []

    @app.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    starlette = app.streamable_http_app()

    async def asgi(scope, receive, send):
        if scope["type"] == "http":
            seen_headers.extend(v.decode() for k, v in scope["headers"] if k == b"x-api-key")
        await starlette(scope, receive, send)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(asgi, log_level="error", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        end = time.monotonic() + 10
        while not server.started and time.monotonic() < end:
            time.sleep(0.05)
        entry = {
            "type": "http",
            "url": f"http://127.0.0.1:{port}/mcp",
            "headers": {"X-Api-Key": "${GODWIT_TEST_KEY:-k123}"},
        }
        with manager(tmp_path, {"web": entry}) as mgr:
            assert mgr.status()[0]["state"] == "connected", mgr.status()
            result = tool(mgr, "mcp__web__add").run({"a": 2, "b": 40}, ToolContext(cwd=tmp_path))
            assert result.content == "42" and not result.is_error
        assert "k123" in seen_headers
        # A URL where nothing listens fails alone, quickly.
        with manager(
            tmp_path, {"gone": {"type": "http", "url": "http://127.0.0.1:9/mcp"}}, start_timeout=5
        ) as mgr:
            assert mgr.status()[0]["state"] == "failed"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _everything_command() -> list[str] | None:
    exe = shutil.which("mcp-server-everything")
    if exe:
        return [exe]
    local = os.environ.get("GODWIT_MCP_EVERYTHING")  # a node_modules/.bin path, as .ci/run sets
    if local and Path(local).exists():
        return [local]
    return None


def test_server_everything_from_npm(tmp_path: Path) -> None:
    command = _everything_command()
    if command is None or not shutil.which("node"):
        pytest.skip("@modelcontextprotocol/server-everything not installed (npm)")
    entries = {"everything": {"command": command[0], "args": [*command[1:], "stdio"]}}
    ctx = ToolContext(cwd=tmp_path)
    with manager(tmp_path, entries) as mgr:
        assert mgr.status()[0]["state"] == "connected", mgr.status()
        names = {t.name for t in mcp_tools(mgr)}
        echo = next(n for n in names if n.endswith("__echo"))
        assert tool(mgr, echo).run({"message": "hey"}, ctx).content.endswith("hey")
        image_tool = next(n for n in names if "image" in n.lower())
        out = convert(mgr.call("everything", image_tool.split("__", 2)[2], {}))
        assert out.images and out.images[0]["media_type"].startswith("image/")


def test_sdk_server_over_the_control_protocol_bridge(tmp_path: Path) -> None:
    """A server inside a Claude Agent SDK program: JSON-RPC goes out as mcp_message requests;
    here the SDK's own bridge answers them, on another event loop as in a real session."""
    sdk = pytest.importorskip("claude_agent_sdk")
    import asyncio

    from claude_agent_sdk._internal.sdk_mcp_bridge import SdkMcpBridge

    from agent.mcp.bridge import cross_loop

    @sdk.tool("shout", "Upper-case a text", {"text": str})
    async def shout(args):
        return {"content": [{"type": "text", "text": args["text"].upper()}]}

    server = sdk.create_sdk_mcp_server("tools", tools=[shout])
    bridge = SdkMcpBridge("tools", server["instance"])
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    sent: list[str] = []

    async def send(name: str, message: dict):
        sent.append(message.get("method", "?"))
        return await bridge.handle(message)

    try:
        mgr = manager(tmp_path, {"tools": {"type": "sdk", "name": "tools"}})
        mgr.sdk_send = cross_loop(send, loop)
        with mgr:
            assert mgr.status()[0]["state"] == "connected", mgr.status()
            result = tool(mgr, "mcp__tools__shout").run({"text": "hi"}, ToolContext(cwd=tmp_path))
            assert result.content == "HI"
        assert "initialize" in sent and "tools/call" in sent
        # Without the control protocol (plain -p), such a server fails alone, with a reason.
        with manager(tmp_path, {"tools": {"type": "sdk", "name": "tools"}}) as plain:
            assert "control protocol" in plain.status()[0]["error"]
    finally:
        loop.call_soon_threadsafe(loop.stop)


def test_sse_server_built_with_the_mcp_package(tmp_path: Path) -> None:
    import asyncio

    import uvicorn
    from mcp.server.mcpserver import MCPServer

    app = MCPServer("old-web")

    @app.tool()
    def twice(n: int) -> int:
        """Double a number."""
        return 2 * n

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app.sse_app(), log_level="error"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        end = time.monotonic() + 10
        while not server.started and time.monotonic() < end:
            time.sleep(0.05)
        entry = {"type": "sse", "url": f"http://127.0.0.1:{port}/sse"}
        with manager(tmp_path, {"old": entry}) as mgr:
            assert mgr.status()[0]["state"] == "connected", mgr.status()
            result = tool(mgr, "mcp__old__twice").run({"n": 21}, ToolContext(cwd=tmp_path))
            assert result.content == "42"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
