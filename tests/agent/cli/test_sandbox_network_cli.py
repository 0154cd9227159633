"""`sandbox.network` as a list of hosts through the real CLI: `godwit -p` in a subprocess, the
fake Messages API on 127.0.0.1 sending bash calls that fetch from a listed host (`localhost`,
serving a file on 127.0.0.1 outside the sandbox) and from hosts that are not listed."""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import threading
from pathlib import Path

import pytest

from tests.agent.cli.test_security_cli import bash, godwit, needs_sandbox, results
from tests.fakes.replies import say


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    (root / "data.txt").write_text("fetched through the proxy\n")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@needs_sandbox
def test_the_model_reaches_a_listed_host_and_is_told_what_was_refused(
    llm_server, repo, site, godwit_home
):
    (Path(godwit_home) / "settings.json").write_text(
        json.dumps({"sandbox": {"network": ["localhost"]}})
    )
    # `--noproxy ''`: inside, NO_PROXY names the sandbox's own loopback (and so `localhost`).
    llm_server.push(
        bash(f"curl -sSf --noproxy '' http://localhost:{site}/data.txt -o got.txt && cat got.txt"),
        bash(f"curl -sSf --noproxy '' http://127.0.0.1:{site}/data.txt"),
        bash("curl -sS https://pypi.org/simple/"),
        bash(
            f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {site}), "
            "timeout=3); print('direct')\""
        ),
        say("done"),
    )
    out = godwit(llm_server, repo, "-p", "go")
    assert out.returncode == 0, out.stderr[-2000:]
    rs = results(out)
    assert rs[0]["content"] == "fetched through the proxy\n"
    assert (repo / "got.txt").read_text() == "fetched through the proxy\n"
    assert "403" in rs[1]["content"] and f"refused 127.0.0.1:{site}" in rs[1]["content"]
    assert "sandbox.network" in rs[1]["content"]
    assert "Not run outside the sandbox" in rs[1]["content"]  # headless: refused
    assert "CONNECT tunnel failed, response 403" in rs[2]["content"]
    assert "refused pypi.org:443" in rs[2]["content"]
    assert "direct" not in rs[3]["content"] and "[exit code" in rs[3]["content"]


def test_a_bad_network_setting_stops_the_cli_with_one_message(llm_server, repo, godwit_home):
    (Path(godwit_home) / "settings.json").write_text(
        json.dumps({"sandbox": {"network": ["https://pypi.org/simple"]}})
    )
    llm_server.push(say("never sent"))
    out = godwit(llm_server, repo, "-p", "hi", timeout=60)
    assert out.returncode in (1, 2), out.stdout
    assert "sandbox.network" in out.stderr and "no scheme, no path" in out.stderr
    assert "Traceback" not in out.stderr
    assert llm_server.model_requests == []
