"""Long sessions through the real loop and SDKs: context editing, compaction, resume."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from agent import Agent
from agent import events as ev
from agent.providers import make_provider
from tests.agent.providers.helpers import FAST
from tests.fakes.replies import call, recorded, say
from tests.shared import FIXTURES as SHARED

FIXTURES = SHARED / "anthropic-streams"

WINDOW = 100_000
CONTEXT = {"trigger_tokens": 30_000, "keep_tool_uses": 3, "clear_at_least_tokens": 10_000}


def openai_agent(server, repo, monkeypatch, settings_extra=None, **kw):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    provider = make_provider(
        "openai:test-model", base_url=server.openai_url, retry=FAST, context_window=WINDOW
    )
    context = {**CONTEXT, **(settings_extra or {})}
    return Agent(
        cwd=repo,
        provider=provider,
        permission_mode="bypassPermissions",
        settings={"context": context, "checkpoints": False},
        **kw,
    )


def tool_messages(body):
    return [m for m in body["messages"] if m["role"] == "tool"]


def command(i: int) -> str:
    return f"yes 'result {i:03d} of a long and noisy tool output' | head -n 150"


def test_150_turn_session_stays_under_budget_and_resumes_with_the_same_view(
    llm_server, repo_dir, monkeypatch
):
    turns = 150
    llm_server.push(*[call("bash", {"command": command(i)}) for i in range(turns)], say("all done"))
    agent = openai_agent(llm_server, repo_dir, monkeypatch, max_turns=80)
    first = agent.run("process everything")
    assert first.stop_reason == "max_turns"
    rt = agent.runtime()

    async def view(runtime):
        prepared = await runtime.context.policy.prepare(runtime.full_request(), count=False)
        return [m.model_dump() for m in prepared.request.messages]

    import asyncio

    before = asyncio.run(view(rt))
    sid = agent.session_id
    agent.close()

    # Resume in the middle: the view sent is exactly what it was before the restart.
    again = Agent.resume(
        sid,
        cwd=repo_dir,
        provider=make_provider(
            "openai:test-model", base_url=llm_server.openai_url, retry=FAST, context_window=WINDOW
        ),
        permission_mode="bypassPermissions",
        settings={"context": CONTEXT, "checkpoints": False},
    )
    assert asyncio.run(view(again.runtime())) == before
    second = again.run("keep going")
    assert second.result == "all done"

    bodies = [r.body for r in llm_server.model_requests]
    assert len(bodies) == turns + 1
    sizes = [len(json.dumps(b)) / 3.5 for b in bodies]
    # Every request stays well under the window (it would reach ~4x the window unedited).
    assert max(sizes) < 0.6 * WINDOW, max(sizes)
    last = tool_messages(bodies[-1])
    assert len(last) == turns
    cleared = [m for m in last if "cleared" in m["content"].lower()]
    intact = [m for m in last if "cleared" not in m["content"].lower()]
    assert len(cleared) > turns // 2
    assert (
        "call the tool again" in cleared[0]["content"].lower() or "again" in cleared[0]["content"]
    )
    # The most recent tool results are intact.
    for i, m in enumerate(last[-3:]):
        assert f"result {turns - 3 + i:03d}" in m["content"]
    assert intact[-1] is last[-1]
    # The log keeps every original result, whatever was cleared from the view.
    log = [json.loads(line) for line in again.runtime().session.path.read_text().splitlines()]
    results = [e for e in log if e["type"] == "tool_result"]
    assert len(results) == turns
    assert all(f"result {i:03d}" in r["content"] for i, r in enumerate(results))
    edits = [e for e in log if e["type"] == "context_edit"]
    assert edits and all(e["source"] == "client" for e in edits)
    # Clearing happens in steps, so most consecutive requests share their prefix (cache hits).
    unchanged = sum(
        1
        for a, b in itertools.pairwise(bodies)
        if json.dumps(b["messages"]).startswith(json.dumps(a["messages"])[:-1])
    )
    assert unchanged > turns * 0.6


def test_anthropic_requests_carry_the_beta_and_edits_and_applied_edits_become_events(
    llm_server, repo_dir
):
    provider = make_provider(
        "anthropic:claude-sonnet-5-5", base_url=llm_server.url, api_key="k", retry=FAST
    )
    agent = Agent(
        cwd=repo_dir,
        provider=provider,
        permission_mode="bypassPermissions",
        thinking_budget=2048,
        settings={"checkpoints": False},
    )
    llm_server.push(
        call("bash", {"command": "echo one"}),
        recorded(FIXTURES / "context_management_response.txt"),
    )
    agent.run("go")
    requests = llm_server.model_requests
    assert len(requests) == 2
    for r in requests:
        assert "context-management-2025-06-27" in r.headers.get("anthropic-beta", "")
        edits = r.body["context_management"]["edits"]
        assert edits[0]["type"] == "clear_thinking_20251015"
        assert edits[1]["type"] == "clear_tool_uses_20250919"
        assert "memory" in edits[1]["exclude_tools"]
    edit = next(e for e in agent.events if isinstance(e, ev.ContextEdit))
    assert edit.source == "server" and edit.cleared_tool_uses > 0


def test_compaction_by_hand_is_logged_and_resume_uses_the_boundary(
    llm_server, repo_dir, monkeypatch
):
    llm_server.push(
        *[call("bash", {"command": command(i)}) for i in range(4)],
        say("first done"),
        say("second answer"),
    )
    agent = openai_agent(
        llm_server, repo_dir, monkeypatch, settings_extra={"compact_keep_last_turns": 1}
    )
    agent.run("turn one")
    agent.run("turn two")
    llm_server.push(say("SUMMARY: did turn one and two"))
    info = agent.compact()
    assert info["status"] == "compacted"
    summary_request = llm_server.model_requests[-1].body
    assert "turn one" in json.dumps(summary_request)
    compaction = next(e for e in agent.events if isinstance(e, ev.Compaction))
    assert compaction.trigger == "manual" and compaction.summary.startswith("SUMMARY")
    assert compaction.tokens_after < compaction.tokens_before
    sid = agent.session_id
    agent.close()
    again = Agent.resume(
        sid,
        cwd=repo_dir,
        provider=make_provider(
            "openai:test-model", base_url=llm_server.openai_url, retry=FAST, context_window=WINDOW
        ),
        settings={"context": {**CONTEXT, "compact_keep_last_turns": 1}, "checkpoints": False},
    )
    messages = again.messages()
    assert "SUMMARY: did turn one and two" in json.dumps(messages[0])
    llm_server.push(say("third answer"))
    again.run("turn three")
    sent = llm_server.model_requests[-1].body["messages"]
    assert "SUMMARY" in sent[1]["content"]
    assert not any(m.get("content") == "turn one" for m in sent)


def test_a_failed_compaction_leaves_the_session_going(llm_server, repo_dir, monkeypatch):
    from tests.fakes.replies import http_error

    llm_server.push(say("one"))
    agent = openai_agent(llm_server, repo_dir, monkeypatch)
    agent.run("turn one")
    llm_server.push(http_error(400, message="bad request"))
    info = agent.compact()
    assert info["status"] == "failed" and "uncompacted" in info["message"]
    llm_server.push(say("still here"))
    assert agent.run("turn two").result == "still here"


@pytest.fixture
def repo_dir(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    return root


def test_automatic_compaction_when_the_window_fills(repo_dir):
    """A small window and no editing: the loop compacts on its own before a call overflows."""
    from agent.context.compaction import SUMMARY_SYSTEM
    from agent.providers.scripted import ScriptedProvider, ScriptedTurn

    class Assistant(ScriptedProvider):
        """Answers every prompt at length, and summary requests with a summary."""

        def _turn(self):
            request = self.requests[-1]
            if request.system == SUMMARY_SYSTEM:
                return ScriptedTurn(text=f"SUMMARY number {len(self.requests)}")
            return ScriptedTurn(text="word " * 1200)

    provider = Assistant([], context_window=20_000)
    agent = Agent(
        cwd=repo_dir,
        provider=provider,
        settings={
            "checkpoints": False,
            "context": {"enabled": False, "compact_at_fraction": 0.5, "compact_keep_last_turns": 1},
        },
    )
    for i in range(12):
        agent.run(f"question {i}")
    compactions = [e for e in agent.events if isinstance(e, ev.Compaction)]
    assert compactions and all(c.trigger == "auto" for c in compactions)
    assert not any(isinstance(e, ev.Error) for e in agent.events)
    sent = provider.requests[-1]
    assert sent.system != SUMMARY_SYSTEM
    assert "SUMMARY number" in sent.messages[0].content[0].text
    assert not any(
        getattr(b, "text", None) == "question 0" for m in sent.messages for b in m.content
    )
    estimate = len(json.dumps([m.model_dump() for m in sent.messages])) / 3.5
    assert estimate < 20_000 * 0.6


def test_headless_compact_flag_and_context_breakdown(llm_server, repo_dir, monkeypatch):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "OPENAI_API_KEY": "k",
        "OPENAI_BASE_URL": llm_server.openai_url,
    }
    llm_server.push(say("one"), say("two"), say("SUMMARY text"), say("three"))
    base = [sys.executable, "-m", "agent.cli", "--model", "openai:test-model"]
    for prompt in ("first", "second"):
        subprocess.run(
            [*base, "-p", prompt] + (["--continue"] if prompt == "second" else []),
            cwd=repo_dir,
            env=env,
            check=True,
            capture_output=True,
        )
    out = subprocess.run(
        [*base, "--continue", "--compact", "-p", "third", "--output-format", "json"],
        cwd=repo_dir,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["result"] == "three"
    ctx = payload["context"]
    parts = ("system_prompt", "tools", "memory", "conversation", "tool_results", "free")
    assert all(k in ctx for k in parts)
    assert ctx["total"] + ctx["free"] == ctx["window"]
    assert "SUMMARY text" in json.dumps(llm_server.model_requests[-1].body)
