"""The fake server itself: what it answers when the script is short or the route is wrong."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.replies import say


def _post(url: str, body: dict, headers: dict | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, headers={"content-type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_empty_script_answers_a_clear_400(llm_server):
    status, text = _post(f"{llm_server.url}/v1/messages", {"model": "m"})
    assert status == 400 and "no scripted reply left" in text


def test_unknown_route_is_404_and_logged(llm_server):
    status, _ = _post(f"{llm_server.url}/v2/whatever", {})
    assert status == 404 and llm_server.requests[-1].path == "/v2/whatever"


def test_any_auth_is_accepted_and_logged(llm_server):
    llm_server.push(say("hi"))
    status, text = _post(
        f"{llm_server.url}/v1/messages",
        {"model": "m"},
        {"x-api-key": "a", "authorization": "Bearer b", "x-unknown": "1"},
    )
    assert status == 200 and json.loads(text)["content"] == [{"type": "text", "text": "hi"}]
    assert llm_server.requests[-1].headers["x-unknown"] == "1"


def test_openai_route_without_v1(llm_server):
    llm_server.push(say("hi"))
    status, text = _post(f"{llm_server.url}/chat/completions", {"model": "m"})
    assert status == 200 and json.loads(text)["choices"][0]["message"]["content"] == "hi"


def test_count_tokens_estimate_and_script(llm_server):
    status, text = _post(
        f"{llm_server.url}/v1/messages/count_tokens",
        {"model": "m", "messages": [{"role": "user", "content": "x" * 400}]},
    )
    assert status == 200 and json.loads(text)["input_tokens"] > 100
    llm_server.push_count(7)
    assert json.loads(_post(f"{llm_server.url}/v1/messages/count_tokens", {})[1]) == {
        "input_tokens": 7
    }


def test_script_replaces_and_push_appends():
    with FakeLLMServer() as server:
        server.push(say("a"), say("b"))
        server.script(say("c"))
        assert server.pending == 1
        server.push(say("d"))
        assert server.pending == 2


def test_stopped_server_refuses():
    server = FakeLLMServer().start()
    url = server.url
    server.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/v1/messages", data=b"{}", timeout=2)
