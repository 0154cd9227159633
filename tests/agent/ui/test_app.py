"""The UI driven through its keys: prompts stream in, tool calls show their results, the status
bar counts tokens and cost, Ctrl+C interrupts, slash commands work, bad input loses nothing."""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import Markdown

from agent import events as ev
from agent.providers.base import TokenUsage
from agent.providers.scripted import ScriptedProvider
from agent.ui.entries import AssistantEntry, ThinkingEntry, ToolEntry, UserEntry

from .helpers import (
    SIZE,
    make_agent,
    make_app,
    send,
    transcript_text,
    until_idle,
    wait_for,
)

REPLY = "The answer is **42**, and here is why: the function returns one less than it should."


async def test_typed_prompt_streams_reply_then_renders_markdown(repo):
    # 0.08 s between pieces: long enough that a loaded 2-core machine still draws a partial reply
    turns = [{"thinking": "Look at app.py first.", "text": REPLY, "delay": 0.08}]
    with make_agent(repo, turns) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press(*"why 41?")
            await pilot.press("enter")
            # While the reply streams, the entry holds a proper prefix of it as plain text.
            entry = await wait_for(
                pilot,
                lambda: next(iter(app.query(AssistantEntry)), None),
                what="the reply to start",
            )
            # What is drawn while streaming is a proper prefix of the reply, as plain text.
            partial = await wait_for(
                pilot,
                lambda: not entry.done and str(entry._live.content),
                what="streamed text on screen",
            )
            assert REPLY.startswith(partial) and len(partial) < len(REPLY)
            assert app.busy and app.status.busy
            await until_idle(pilot)
            assert entry.done and entry.text == REPLY
            assert entry.query_one(Markdown).source == REPLY
            assert [u.content.plain for u in app.query(UserEntry)] == ["> why 41?"]
            thinking = app.query_one(ThinkingEntry)
            assert thinking.text == "Look at app.py first." and thinking.collapsed
            assert app.prompt_input.text == ""
        assert agent.messages()[0]["content"][0]["text"] == "why 41?"


async def test_tool_call_shows_name_argument_and_expandable_result(repo):
    turns = [
        {"text": "Counting.", "tool_calls": [{"name": "bash", "input": {"command": "seq 11 19"}}]},
        {
            "text": "Reading a missing file.",
            "tool_calls": [
                {
                    "name": "str_replace_based_edit_tool",
                    "input": {"command": "view", "path": "nope.py"},
                }
            ],
        },
        {"text": "Done."},
    ]
    with make_agent(repo, turns, mode="bypassPermissions") as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "count to nine")
            await until_idle(pilot)
            bash, view = app.query(ToolEntry)
            assert bash.tool_name == "bash" and "seq 11 19" in bash._head.content.plain
            shown = bash._result.content.plain
            assert "11\n" in shown and "14" in shown and "15" not in shown and "+5 lines" in shown
            bash.scroll_visible(animate=False)
            await pilot.pause()
            await pilot.click(bash)
            assert bash.expanded and "19" in bash._result.content.plain
            assert "Read nope.py" in view._head.content.plain
            assert view.is_error
            assert any("red" in str(span.style) for span in view._result.content.spans)
            assert "Done." in transcript_text(app)


async def test_successful_edit_shows_its_diff_and_expands_to_the_tool_output(repo):
    edit = {
        "name": "str_replace_based_edit_tool",
        "input": {
            "command": "str_replace",
            "path": "app.py",
            "old_str": "return 41",
            "new_str": "return 42",
        },
    }
    with make_agent(
        repo, [{"text": "Fixing.", "tool_calls": [edit]}, {"text": "Done."}], mode="acceptEdits"
    ) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "fix")
            await until_idle(pilot)
            entry = app.query_one(ToolEntry)
            shown = entry._result.content.plain
            # The file's real lines, numbered as in the file, with the unchanged line around.
            assert shown.splitlines() == [
                "@@ -1,2 +1,2 @@",
                " def answer():",
                "-    return 41",
                "+    return 42",
            ]
            entry.scroll_visible(animate=False)
            await pilot.pause()
            await pilot.click(entry)
            assert "has been edited" in entry._result.content.plain
            assert (repo / "app.py").read_text().endswith("return 42\n")


class PricedProvider(ScriptedProvider):
    """A scripted model with a price, so the cost shown can be checked."""

    def cost(self, usage: TokenUsage) -> float:
        return usage.input_tokens * 3e-6 + usage.output_tokens * 15e-6


async def test_status_bar_shows_tokens_cost_mode_and_context(repo):
    turns = [
        {"text": "One.", "usage": {"input_tokens": 1200, "output_tokens": 30}},
        {"text": "Two.", "usage": {"input_tokens": 1500, "output_tokens": 70}},
    ]
    with make_agent(repo, [], provider=PricedProvider(turns)) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "first")
            await until_idle(pilot)
            await send(pilot, "second")
            await until_idle(pilot)
            bar = app.status.render().plain
            expected_cost = 2700 * 3e-6 + 100 * 15e-6
            assert agent.runtime().totals.cost_usd == pytest.approx(expected_cost)
            assert app.status.cost == pytest.approx(expected_cost)
            assert "↑ 2.7k" in bar and "↓  100" in bar and f"${expected_cost:.4f}" in bar
            usage = agent.context_usage()
            assert app.status.context_total == usage["total"] > 0
            assert f"/{usage['window'] // 1000}k)" in bar
            assert agent.session_id in bar and "⏵ default" in bar and "ready" in bar
            await pilot.press("shift+tab")
            assert agent.runtime().policy.mode == "acceptEdits"
            assert "⏵ acceptEdits" in app.status.render().plain


async def test_ctrl_c_interrupts_a_long_command(repo):
    turns = [
        {
            "text": "Waiting.",
            "tool_calls": [
                {"name": "bash", "input": {"command": "echo started; sleep 30; echo never"}}
            ],
        }
    ]
    with make_agent(repo, turns, mode="bypassPermissions") as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "wait")
            entry = await wait_for(pilot, lambda: next(iter(app.query(ToolEntry)), None))
            await asyncio.sleep(0.5)  # the command is running
            assert entry.result is None and app.busy
            await pilot.press("ctrl+c")
            await until_idle(pilot, timeout=10)
            ends = [e for e in agent.events if isinstance(e, ev.TurnEnd)]
            assert [e.reason for e in ends] == ["interrupted"]
            assert entry.is_error and "started" in entry.result and "never" not in entry.result
            assert "turn ended: interrupted" in transcript_text(app)
            # The app is still usable: a new prompt runs.
            await send(pilot, "again")
            await until_idle(pilot)
            assert "no more turns" in transcript_text(app)


async def test_prompt_while_busy_is_kept_in_the_input(repo):
    turns = [
        {"text": "Waiting.", "tool_calls": [{"name": "bash", "input": {"command": "sleep 30"}}]}
    ]
    with make_agent(repo, turns, mode="bypassPermissions") as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "first")
            await wait_for(pilot, lambda: app.query(ToolEntry))
            await send(pilot, "second, typed too early")
            # Queued (shown above the input) rather than refused.
            assert "queued: second, typed too early" in app.query_one("#queued").content.plain
            await pilot.press("escape")  # Esc interrupts, and takes the queue back
            await until_idle(pilot)
            assert [e.text for e in agent.events if isinstance(e, ev.UserMessage)] == ["first"]
            assert app.prompt_input.text == "second, typed too early"


async def test_oldest_entries_leave_the_screen_but_not_the_session(repo):
    turns = [{"text": f"reply {i}"} for i in range(6)]
    with make_agent(repo, turns) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            app.transcript.max_entries = 8
            for i in range(6):
                await send(pilot, f"prompt {i}")
                await until_idle(pilot)
            await pilot.pause()
            assert len(app.transcript.children) == 8
            text = transcript_text(app)
            assert "reply 5" in text and "> prompt 0" not in text
            assert len(agent.messages()) == 12


async def test_multiline_input_with_ctrl_j(repo):
    with make_agent(repo, [{"text": "ok"}]) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("a", "ctrl+j", "b")
            assert app.prompt_input.text == "a\nb"
            await pilot.press("enter")
            await until_idle(pilot)
            assert agent.messages()[0]["content"][0]["text"] == "a\nb"


async def test_slash_commands_help_context_clear_unknown_quit(repo):
    with make_agent(repo, [{"text": "ok"}]) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "/help")
            await until_idle(pilot)
            text = transcript_text(app)
            assert all(f"/{name}" in text for name in ("compact", "context", "rewind", "undo"))
            await send(pilot, "/context")
            await until_idle(pilot)
            usage = agent.context_usage()
            assert f"{usage['tools']:,}" in transcript_text(app)
            await send(pilot, "/nonsense now")
            await until_idle(pilot)
            assert "Unknown command /nonsense" in transcript_text(app)
            await send(pilot, "/clear")
            await until_idle(pilot)
            text = transcript_text(app)
            assert "/compact" not in text and "Unknown command" not in text
            await send(pilot, "/quit")
            await pilot.pause()
        assert app.return_code == 0


async def test_ctrl_c_twice_quits_when_idle_and_ctrl_d_quits(repo):
    with make_agent(repo, []) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            app.prompt_input.text = "draft"
            await pilot.press("ctrl+c")  # first clears the draft
            assert app.prompt_input.text == "" and app.is_running
            await pilot.press("ctrl+c")
            assert "again to quit" in app.status.render().plain and app.is_running
            await pilot.press("ctrl+c")
            await pilot.pause()
        assert app.return_code == 0
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+d")
            await pilot.pause()
        assert app.return_code == 0


async def test_compact_with_a_scripted_summary(repo):
    turns = [
        {"text": "First answer."},
        {"text": "Second answer."},
        {"text": "SUMMARY: the user asked two questions."},
    ]
    with make_agent(repo, turns, context={"compact_keep_last_turns": 1}) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "question one")
            await until_idle(pilot)
            await send(pilot, "question two")
            await until_idle(pilot)
            await send(pilot, "/compact keep the names")
            await until_idle(pilot)
            compactions = [e for e in agent.events if isinstance(e, ev.Compaction)]
            assert len(compactions) == 1 and compactions[0].trigger == "manual"
            assert "SUMMARY" in compactions[0].summary
            text = transcript_text(app)
            assert "conversation compacted (manual)" in text and "SUMMARY" in text
            # The summariser was told the user's instructions.
            assert "keep the names" in str(agent.options.provider.requests[-1].model_dump())
            assert agent.messages()[0]["content"][0]["text"].startswith("This session was")


async def test_compact_with_nothing_to_compact_says_so(repo):
    with make_agent(repo, []) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "/compact")
            await until_idle(pilot)
            assert "Nothing to compact" in transcript_text(
                app
            ) or "compaction failed" in transcript_text(app)
            assert not any(isinstance(e, ev.Compaction) for e in agent.events)


async def test_resume_renders_history_and_warnings(repo):
    turns = [
        {
            "text": "Earlier reply.",
            "tool_calls": [{"name": "bash", "input": {"command": "echo from-history"}}],
        },
        {"text": "All done."},
    ]
    with make_agent(repo, turns, mode="bypassPermissions") as first:
        await first.arun("earlier prompt")
        session_id = first.session_id
    # A torn last line, as a crash leaves it: resume warns and the UI shows the warning.
    log = next(agent_home_sessions(session_id))
    with log.open("a") as handle:
        handle.write('{"type": "assist')
    from agent import Agent

    with Agent(cwd=repo, continue_latest=True, provider=ScriptedProvider([])) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            text = transcript_text(app)
            assert "> earlier prompt" in text and "All done." in text
            entry = app.query_one(ToolEntry)
            assert "from-history" in entry.result
            assert f"resumed session {session_id}" in text
            assert "warning:" in text


def agent_home_sessions(session_id: str):
    import os
    from pathlib import Path

    return Path(os.environ["GODWIT_HOME"]).rglob(f"{session_id}*.jsonl")


async def test_up_and_down_walk_the_prompt_history(repo):
    with make_agent(repo, [{"text": "one"}, {"text": "two"}]) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            for text in ("first prompt", "second prompt"):
                await send(pilot, text)
                await until_idle(pilot)
            await pilot.press(*"dra")
            await pilot.press("up")
            assert app.prompt_input.text == "second prompt"
            await pilot.press("up", "up")  # stops at the oldest
            assert app.prompt_input.text == "first prompt"
            await pilot.press("down")
            assert app.prompt_input.text == "second prompt"
            await pilot.press("down")
            assert app.prompt_input.text == "dra"  # the draft comes back


async def test_events_posted_as_messages_render_retries_edits_errors(repo):
    """The UI's whole interface to the agent is the AgentEvent message: post events directly."""
    from agent.messages import Message
    from agent.ui.messages import AgentEvent

    with make_agent(repo, []) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            for event in (
                ev.TextDelta(text="doomed partial "),
                ev.Retry(attempt=1, delay_s=2.0, reason="overloaded (529)"),
                ev.TextDelta(text="final text"),
                ev.AssistantMessage(
                    message=Message.model_validate(
                        {"role": "assistant", "content": [{"type": "text", "text": "final text"}]}
                    ),
                    stop_reason="end_turn",
                    model="m",
                    turn=1,
                ),
                ev.ContextEdit(source="client", cleared_tool_uses=3, cleared_input_tokens=1200),
                ev.Error(message="the service is down", kind="api"),
                ev.TurnEnd(reason="max_turns", turns=5),
            ):
                app.post_message(AgentEvent(event))
            await pilot.pause()
            await pilot.pause()
            text = transcript_text(app)
            assert "doomed partial" not in text and "final text" in text
            assert "retrying (attempt 1)" in text and "overloaded" in text
            assert "cleared 3 old tool result(s), ~1200 tokens" in text
            assert "error (api): the service is down" in text
            assert "turn ended: max_turns" in text
            assert len(app.query(AssistantEntry)) == 1


async def test_escape_stops_a_slow_compaction_and_nothing_is_replaced(repo):
    turns = [
        {"text": "First answer."},
        {"text": "Second answer."},
        {"text": "summary " * 200, "delay": 0.05},
    ]
    with make_agent(repo, turns, context={"compact_keep_last_turns": 1}) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            for text in ("question one", "question two"):
                await send(pilot, text)
                await until_idle(pilot)
            before = agent.messages()
            await send(pilot, "/compact")
            await wait_for(pilot, lambda: app.interrupt_command is not None)
            await asyncio.sleep(0.3)  # the summary is streaming
            await pilot.press("escape")
            await until_idle(pilot, timeout=5)
            assert "compaction failed: interrupted by the user" in transcript_text(app)
            assert not any(isinstance(e, ev.Compaction) for e in agent.events)
            assert agent.messages() == before


async def test_long_work_shows_its_progress_in_the_status_bar(repo):
    """A Progress event (a local model loading its shards, a first snapshot) replaces "working"
    until its finished event; the line goes when the work is done."""
    turns = [{"text": "done", "delay": 2.0}]
    with make_agent(repo, turns) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "go")
            await wait_for(pilot, lambda: app.busy, what="the turn to start")
            report = agent.runtime()._progress("load")
            report(1, 3)
            await wait_for(
                pilot,
                lambda: "Loading the model: 1/3 shards" in app.status.render().plain,
                what="the progress line",
            )
            assert "working" not in app.status.render().plain
            report(3, 3)
            await wait_for(
                pilot, lambda: "working" in app.status.render().plain, what="the line to go"
            )
            await until_idle(pilot)
