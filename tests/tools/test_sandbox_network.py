"""`sandbox.network` as a list of hosts: the patterns, the settings check, the proxy on real
sockets, and (with real bubblewrap) a sandboxed shell that reaches a listed host on 127.0.0.1
through the proxy and nothing else. There is no DNS here: `localhost` is the listed name."""

from __future__ import annotations

import functools
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import tools
from agent.settings import ConfigError, load_settings
from tools.base import ToolContext
from tools.bash import BashTool
from tools.sandbox import SandboxConfig, sandbox_status
from tools.sandbox_hosts import parse_host, parse_pattern
from tools.sandbox_proxy import BRIDGE, NetworkProxy

pytestmark = pytest.mark.timeout(120)
needs_sandbox = pytest.mark.skipif(
    not sandbox_status().available, reason=f"bash sandbox unavailable: {sandbox_status().reason}"
)


# -- patterns and settings ----------------------------------------------------------------------


def allows(pattern: str, host: str, port: int) -> bool:
    h = parse_host(host)
    return h is not None and parse_pattern(pattern).matches(h, port)


def test_patterns_match_names_suffixes_ports_and_only_listed_addresses():
    assert allows("pypi.org", "PyPI.org", 443) and allows("pypi.org", "pypi.org.", 80)
    assert not allows("pypi.org", "evilpypi.org", 443)
    assert not allows("pypi.org", "pypi.org.evil.com", 443)
    assert allows("*.pythonhosted.org", "files.pythonhosted.org", 443)
    assert allows("*.pythonhosted.org", "a.b.pythonhosted.org", 443)
    assert not allows("*.pythonhosted.org", "pythonhosted.org", 443)  # the suffix itself: no
    assert not allows("*.pythonhosted.org", "xpythonhosted.org", 443)
    assert allows("github.com:443", "github.com", 443)
    assert not allows("github.com:443", "github.com", 22)
    # Addresses: only one listed as such, in any spelling the resolver would accept.
    assert not allows("localhost", "127.0.0.1", 80)
    assert allows("127.0.0.1", "127.1", 80) and allows("127.0.0.1", "2130706433", 80)
    assert allows("127.0.0.1", "0x7f.0.0.1", 80)
    assert allows("[::1]:8080", "[::1]", 8080) and not allows("[::1]:8080", "::1", 8081)
    with pytest.raises(ValueError, match="goes before a name"):
        parse_pattern("*.0.1")  # '*.' never takes an address
    for bad in ("", "a b", "x/y", "a..b", "evil.com@x", "1.2.3.4.5"):
        assert parse_host(bad) is None, bad


@pytest.mark.parametrize(
    "value, message",
    [
        ("some", 'must be false or "none", true or "all", or a list of hosts'),
        (1, 'must be false or "none", true or "all"'),
        (["https://pypi.org"], "no scheme, no path"),
        (["*"], "'*' may only begin a pattern"),
        (["pypi.org:99999"], "the port must be a number from 1 to 65535"),
        (["*.10.0.0.1"], "'*.' goes before a name"),
        ([42], "is not a host name"),
    ],
)
def test_a_bad_network_setting_is_one_message_naming_the_key(tmp_path, value, message):
    home, project = tmp_path / "home", tmp_path / "project"
    home.mkdir()
    project.mkdir()
    (home / "settings.json").write_text(json.dumps({"sandbox": {"network": value}}))
    with pytest.raises(ConfigError) as e:
        load_settings(home, project)
    assert "sandbox.network" in str(e.value) and message in str(e.value)


def test_network_forms_and_a_project_cannot_open_the_network(tmp_path):
    assert SandboxConfig().network is False and SandboxConfig().allowed_hosts is None
    assert SandboxConfig(network="none").network is False
    assert SandboxConfig(network="all").network is True
    assert SandboxConfig(network=True).allowed_hosts is None
    assert SandboxConfig(network=[]).network is False
    c = SandboxConfig(network=["PyPI.org", "*.pythonhosted.org", "github.com:443", "pypi.org"])
    assert c.network == ["pypi.org", "*.pythonhosted.org", "github.com:443"]
    assert [str(p) for p in c.allowed_hosts] == c.network
    home, project = tmp_path / "home", tmp_path / "project"
    (project / ".godwit").mkdir(parents=True)
    home.mkdir()
    (home / "settings.json").write_text(json.dumps({"sandbox": {"network": ["pypi.org"]}}))
    assert load_settings(home, project).sandbox.network == ["pypi.org"]
    for value in (["pypi.org"], "all", True):
        (project / ".godwit" / "settings.json").write_text(
            json.dumps({"sandbox": {"network": value}})
        )
        with pytest.raises(ConfigError, match=r"loosens the bash sandbox \(sandbox.network\)"):
            load_settings(home, project)
    (project / ".godwit" / "settings.json").write_text('{"sandbox": {"network": "none"}}')
    assert load_settings(home, project).sandbox.network is False  # tightening is fine


# -- the proxy on real sockets, fed as the bridge feeds it ---------------------------------------


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def site(tmp_path):
    """A threaded HTTP server on 127.0.0.1 serving `f.txt`; yields its port."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "f.txt").write_text("served from outside\n")
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


class Fed:
    """A proxy and a function that opens a connection to it the way the bridge does."""

    def __init__(self, hosts: list[str]) -> None:
        self.proxy = NetworkProxy([parse_pattern(h) for h in hosts])
        self.proxy.start()
        self.ctl = socket.socket(fileno=self.proxy.sandbox_fd())
        self.listener = socket.create_server(("127.0.0.1", 0))

    def connect(self) -> socket.socket:
        client = socket.create_connection(self.listener.getsockname(), timeout=10)
        accepted, _ = self.listener.accept()
        socket.send_fds(self.ctl, [b"c"], [accepted.fileno()])
        accepted.close()
        return client

    def close(self) -> None:
        self.proxy.stop()
        self.ctl.close()
        self.listener.close()


def exchange(conn: socket.socket, data: bytes) -> bytes:
    conn.sendall(data)
    out = b""
    while chunk := conn.recv(65536):
        out += chunk
    conn.close()
    return out


def test_the_proxy_serves_listed_hosts_and_refuses_the_rest(site):
    fed = Fed(["localhost"])
    try:
        got = exchange(
            fed.connect(),
            f"GET http://LocalHost:{site}/f.txt HTTP/1.1\r\nHost: localhost\r\n"
            "Proxy-Connection: keep-alive\r\n\r\n".encode(),
        )
        assert got.startswith(b"HTTP/1.0 200") and got.endswith(b"served from outside\n")
        # CONNECT: a tunnel, bytes both ways (the HTTP inside stands for TLS).
        conn = fed.connect()
        conn.sendall(f"CONNECT localhost:{site} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert conn.recv(1024).startswith(b"HTTP/1.1 200")
        got = exchange(conn, b"GET /f.txt HTTP/1.0\r\n\r\n")
        assert got.endswith(b"served from outside\n")
        before = fed.proxy.refusal_count()
        for request in (
            f"GET http://127.0.0.1:{site}/f.txt HTTP/1.1\r\n\r\n",  # the address: not listed
            "CONNECT example.com:443 HTTP/1.1\r\n\r\n",
            f"CONNECT localhost.evil.com:{site} HTTP/1.1\r\n\r\n",
        ):
            got = exchange(fed.connect(), request.encode())
            assert got.startswith(b"HTTP/1.1 403"), got
            assert b"not in the sandbox.network setting" in got
        assert b"refused a connection to example.com:443" in exchange(
            fed.connect(), b"CONNECT EXAMPLE.com:443 HTTP/1.1\r\n\r\n"
        )
        assert fed.proxy.refused_since(before) == [
            f"127.0.0.1:{site}",
            "example.com:443",
            f"localhost.evil.com:{site}",
        ]
    finally:
        fed.close()


def test_the_proxy_survives_hostile_input(site):
    fed = Fed(["localhost"])
    try:
        for bad in (
            b"GET /f.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",  # not a proxy request
            b"GET ftp://localhost/f.txt HTTP/1.1\r\n\r\n",
            b"GET http://localhost@evil.com/ HTTP/1.1\r\n\r\n",
            b"CONNECT localhost HTTP/1.1\r\n\r\n",
            b"CONNECT a b:1 HTTP/1.1\r\n\r\n",
            b"hello\r\n\r\n",
        ):
            got = exchange(fed.connect(), bad)
            assert got.startswith(b"HTTP/1.1 400"), (bad, got)
        assert fed.proxy.refusal_count() == 0
        # Not a socket, a datagram socket, several at once: dropped, and the proxy goes on.
        r, w = os.pipe()
        a, b = socket.socketpair(type=socket.SOCK_DGRAM)
        socket.send_fds(fed.ctl, [b"c"], [r, w, a.fileno()])
        for fd in (r, w):
            os.close(fd)
        a.close()
        b.close()
        got = exchange(
            fed.connect(), f"GET http://localhost:{site}/f.txt HTTP/1.0\r\n\r\n".encode()
        )
        assert got.endswith(b"served from outside\n")
    finally:
        fed.close()
    assert not fed.proxy._thread.is_alive()


# -- a real sandboxed shell ----------------------------------------------------------------------


@pytest.fixture
def work(tmp_path):
    root = tmp_path / "work"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def sh(tool, ctx, command):
    return tool.run({"command": command}, ctx)


def _bridges() -> list[int]:
    marker = BRIDGE.strip().splitlines()[1]
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().decode("utf-8", "replace")
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            # bwrap's own command lines hold the script too; the bridge's starts with Python.
            if cmd.startswith(sys.executable) and marker in cmd and state not in ("Z", "X"):
                found.append(int(entry))
    return found


# Inside, `localhost` would bypass the proxy (NO_PROXY names the sandbox's own loopback), so
# the commands clear NO_PROXY: `localhost` stands for a real listed name here.
def curl(url: str, *flags: str) -> str:
    return f"curl -sS {' '.join(flags)} --noproxy '' {url}"


def urllib_get(url: str) -> str:
    return (
        'env -u NO_PROXY -u no_proxy python3 -c "import urllib.request as u; '
        f"print(u.urlopen('{url}', timeout=10).read().decode())\""
    )


@needs_sandbox
def test_a_sandboxed_shell_reaches_listed_hosts_through_the_proxy_only(work, site):
    before = set(_bridges())
    tool, ctx = BashTool(sandbox=SandboxConfig(network=["localhost"])), ToolContext(cwd=work)
    try:
        env = sh(tool, ctx, "env | grep -i _proxy= | sort").content
        assert "HTTPS_PROXY=http://127.0.0.1:" in env and "NO_PROXY=localhost" in env
        url = f"http://localhost:{site}/f.txt"
        r = sh(tool, ctx, curl(url))
        assert r.content == "served from outside\n" and r.sandbox_blocked is None
        assert sh(tool, ctx, curl(url, "--proxytunnel")).content == "served from outside\n"
        assert sh(tool, ctx, urllib_get(url)).content == "served from outside\n\n"
        # Not listed: refused by the proxy, and the result says which host and which setting.
        r = sh(tool, ctx, curl(f"http://127.0.0.1:{site}/f.txt", "-f"))
        assert "403" in r.content and r.sandbox_blocked == "network"
        assert f"proxy refused 127.0.0.1:{site}: not in the sandbox.network setting" in r.content
        r = sh(tool, ctx, curl("https://example.com/"))
        assert "CONNECT tunnel failed, response 403" in r.content
        assert "refused example.com:443" in r.content
        r = sh(tool, ctx, curl("http://example.org/"))  # no -f: the body says why
        assert "refused a connection to example.org:80" in r.content
        assert "sandbox.network" in r.content and "[exit code" not in r.content
        # Around the proxy: no network at all.
        r = sh(
            tool,
            ctx,
            f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {site}), "
            "timeout=3); print('connected')\"",
        )
        assert "connected" not in r.content and "[exit code" in r.content
        assert "Couldn't connect" in sh(tool, ctx, f"curl -sS --noproxy '*' {url}").content
        assert len(set(_bridges()) - before) == 1
        proxy = ctx.state["bash"].proxy
    finally:
        tools.close_all(ctx)
    # The bridge died with the sandbox; the proxy's thread with the session.
    deadline = time.monotonic() + 5
    while set(_bridges()) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not set(_bridges()) - before
    assert not proxy._thread.is_alive()


@needs_sandbox
def test_all_and_none_keep_their_meaning(work, site):
    probe = (
        f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {site}), "
        "timeout=3); print('connected')\""
    )
    tool, ctx = BashTool(sandbox=SandboxConfig(network="all")), ToolContext(cwd=work)
    try:
        assert "connected" in sh(tool, ctx, probe).content
        assert ctx.state["bash"].proxy is None
    finally:
        tools.close_all(ctx)
    tool, ctx = BashTool(sandbox=SandboxConfig(network="none")), ToolContext(cwd=work)
    try:
        assert "connected" not in sh(tool, ctx, probe).content
        assert "_proxy=" not in sh(tool, ctx, "env").content.lower()
        r = sh(tool, ctx, curl(f"http://localhost:{site}/f.txt", "--proxy http://127.0.0.1:1"))
        assert "served" not in r.content and "[exit code" in r.content
    finally:
        tools.close_all(ctx)
