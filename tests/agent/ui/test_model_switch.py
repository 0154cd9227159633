"""`/model` in the terminal UI: the next request goes to the new model, the switch is an event
in the session, and `/context` shows each instruction file's share. Real anthropic SDK against
the fake Messages API."""

from __future__ import annotations

from agent import Agent
from agent import events as ev
from agent.providers.aliases import newest, sdk_model_ids
from tests.fakes.replies import say

from .helpers import SIZE, make_app, send, transcript_text, until_idle, wait_for


async def test_model_command_switches_the_next_request(repo, llm_server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", llm_server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    (repo / "AGENTS.md").write_text("Run the tests with pytest.\n")
    llm_server.push(say("first"), say("second"))
    ids = sdk_model_ids()
    with Agent(cwd=repo) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "hello")
            await until_idle(pilot)
            assert llm_server.requests[-1].body["model"] == newest("sonnet", ids)
            await send(pilot, "/model haiku")
            await wait_for(pilot, lambda: "haiku" in app.status.model, what="the status bar")
            await send(pilot, "again")
            await until_idle(pilot)
            posts = [r for r in llm_server.requests if r.path == "/v1/messages"]
            assert posts[-1].body["model"] == newest("haiku", ids)
            await send(pilot, "/context")
            await wait_for(pilot, lambda: "AGENTS.md" in transcript_text(app), what="/context")
        changes = [e for e in agent.events if isinstance(e, ev.ModelChanged)]
        assert [c.model for c in changes] == [f"anthropic:{newest('haiku', ids)}"]
        assert agent.model == changes[0].model
