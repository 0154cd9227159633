"""The terminal UI items of issue 13, through the Textual pilot on a scripted session: words for
people, the redrawn transcript, counters after an interrupt, /clear, the prompt queue, /cost,
/resume."""

from __future__ import annotations

from agent import events as ev
from agent.session.index import godwit_home, list_sessions
from agent.ui.approval import ApprovalScreen
from agent.ui.entries import ToolEntry
from agent.ui.resume_screen import ResumeScreen
from agent.ui.rewind_screen import RewindScreen

from .helpers import (
    SIZE,
    make_agent,
    make_app,
    screen_text,
    send,
    transcript_text,
    until_idle,
    wait_for,
)

API_NAME = "str_replace_based_edit_tool"
LONG = "".join(f"line {n}\n" for n in range(1, 30))
EDIT_LINE_20 = {
    "name": API_NAME,
    "input": {
        "command": "str_replace",
        "path": "long.txt",
        "old_str": "line 20\n",
        "new_str": "line twenty\n",
    },
}


async def modal(pilot) -> ApprovalScreen:
    return await wait_for(
        pilot,
        lambda: isinstance(pilot.app.screen, ApprovalScreen) and pilot.app.screen,
        what="the approval dialog",
    )


async def test_approval_and_transcript_speak_to_people(repo):
    (repo / "long.txt").write_text(LONG)
    turns = [
        {"text": "Editing.", "tool_calls": [EDIT_LINE_20]},
        {
            "text": "Testing.",
            "tool_calls": [{"name": "bash", "input": {"command": "touch made.txt"}}],
        },
        {"text": "Done."},
    ]
    # Sandboxed commands are not asked about (issue 14); this test is about the asking.
    with make_agent(repo, turns, sandbox={"enabled": False}) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "rename line 20")
            screen = await modal(pilot)
            shown = screen_text(app)
            assert "Edit long.txt?" in shown and API_NAME not in shown
            body = screen.query_one("#approval-body").content.plain
            # The real place, with three lines of context each side.
            assert "@@ -17,7 +17,7 @@" in body
            assert " line 17" in body and "-line 20" in body and "+line twenty" in body
            await pilot.press("y")
            screen = await modal(pilot)
            assert "Run `touch made.txt`?" in screen_text(app)
            await pilot.press("a")
            await until_idle(pilot)
            edit, bash = app.query(ToolEntry)
            assert edit._head.content.plain.startswith("⏺ Edit long.txt")
            assert "@@ -17,7 +17,7 @@" in edit._result.content.plain
            assert edit._decision.content.plain.strip() == "✓ allowed by you"
            assert bash._decision.content.plain.strip() == "✓ allowed for this session"
            text = transcript_text(app)
            assert API_NAME not in text and "(callback)" not in text and "(rule)" not in text
            await pilot.press("escape")
            await pilot.pause(0.1)
            await pilot.press("escape")
            picker = await wait_for(
                pilot,
                lambda: isinstance(app.screen, RewindScreen) and app.screen,
                what="the rewind picker",
            )
            listing = screen_text(app)
            assert API_NAME not in listing and "file(s)" not in listing
            assert "edit long.txt" in listing and "1 file" in listing
            picker.action_close()


async def test_redraw_after_rewind_and_undo_keeps_decisions_and_diffs(repo):
    (repo / "long.txt").write_text(LONG)
    turns = [
        {"text": "Editing.", "tool_calls": [EDIT_LINE_20]},
        {"text": "Done."},
        {"text": "Again."},
    ]
    with make_agent(repo, turns) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "rename line 20")
            await modal(pilot)
            await pilot.press("y")
            await until_idle(pilot)
            await send(pilot, "and?")
            await until_idle(pilot)
            second = next(c["id"] for c in agent.checkpoints() if c["turn"] == 2)
            from agent.ui import session_ops

            await session_ops.rewind(app, second, "conversation")
            await pilot.pause()
            (entry,) = app.query(ToolEntry)
            assert entry._decision.content.plain.strip() == "✓ allowed by you"
            assert "@@ -17,7 +17,7 @@" in entry._result.content.plain
            await session_ops.undo_rewind(app)
            await pilot.pause()
            (entry,) = app.query(ToolEntry)
            assert entry._decision.content.plain.strip() == "✓ allowed by you"


async def test_an_interrupted_turn_counts_its_tokens(repo):
    words = " ".join(f"word{n}" for n in range(400))
    with make_agent(repo, [{"text": words, "delay": 0.02}]) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "talk for a while")
            await wait_for(pilot, lambda: "word20" in transcript_text(app), what="streaming")
            await pilot.press("escape")
            await until_idle(pilot)
            totals = agent.runtime().totals
            assert totals.input_tokens > 0 and totals.output_tokens > 0
            assert (app.status.tokens_in, app.status.tokens_out) == (
                totals.input_tokens,
                totals.output_tokens,
            )
            usage = [e for e in agent.events if isinstance(e, ev.Usage)]
            assert len(usage) == 1


async def test_clear_starts_a_new_conversation_and_the_old_one_stays(repo):
    turns = [{"text": "Noted: heron."}, {"text": "Which word?"}]
    with make_agent(repo, turns) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "remember heron")
            await until_idle(pilot)
            old = agent.session_id
            await send(pilot, "/clear")
            await until_idle(pilot)
            assert agent.session_id != old and app.status.session == agent.session_id
            assert "remember heron" not in transcript_text(app)
            await send(pilot, "what word?")
            await until_idle(pilot)
            provider = agent.runtime().provider
            sent = [m.model_dump() for m in provider.requests[-1].messages]
            assert "heron" not in str(sent)
        rows = list_sessions(godwit_home(), repo)
        assert {r["id"] for r in rows} == {old, agent.session_id}


async def test_prompts_typed_while_working_are_queued(repo):
    slow = {"text": "Working.", "tool_calls": [{"name": "bash", "input": {"command": "sleep 1"}}]}
    turns = [slow, {"text": "First done."}, {"text": "Second done."}]
    with make_agent(repo, turns, mode="bypassPermissions") as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "first")
            await wait_for(pilot, lambda: app.query(ToolEntry))
            await send(pilot, "second")
            assert app.prompt_input.text == ""
            assert "queued" in screen_text(app) and "second" in screen_text(app)
            await wait_for(pilot, lambda: "Second done." in transcript_text(app), timeout=20)
            await until_idle(pilot)
            prompts = [e.text for e in agent.events if isinstance(e, ev.UserMessage)]
            assert prompts == ["first", "second"]
            assert "queued" not in screen_text(app)


async def test_escape_clears_the_queue_back_into_the_input(repo):
    turns = [
        {"text": "Waiting.", "tool_calls": [{"name": "bash", "input": {"command": "sleep 30"}}]}
    ]
    with make_agent(repo, turns, mode="bypassPermissions") as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "first")
            await wait_for(pilot, lambda: app.query(ToolEntry))
            await send(pilot, "second")
            await send(pilot, "third")
            await pilot.press("escape")
            await until_idle(pilot)
            assert [e.text for e in agent.events if isinstance(e, ev.UserMessage)] == ["first"]
            assert app.prompt_input.text == "second\nthird"
            assert "queued" not in screen_text(app)


async def test_cost_and_resume(repo):
    turns = [
        {"text": "One.", "usage": {"input_tokens": 1500, "output_tokens": 30}},
        {"text": "Two."},
    ]
    with make_agent(repo, turns) as agent:
        app = make_app(agent)
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "the first conversation")
            await until_idle(pilot)
            first = agent.session_id
            await send(pilot, "/cost")
            await until_idle(pilot)
            text = transcript_text(app)
            assert "1,500" in text and "input tokens" in text and "$" in text
            await send(pilot, "/clear")
            await until_idle(pilot)
            await send(pilot, "the second one")
            await until_idle(pilot)
            await send(pilot, "/resume")
            picker = await wait_for(
                pilot,
                lambda: isinstance(app.screen, ResumeScreen) and app.screen,
                what="the session picker",
            )
            listing = screen_text(app)
            assert "the first conversation" in listing and "the second one" in listing
            await pilot.press("down", "enter")  # newest first: the first session is second
            await wait_for(pilot, lambda: agent.session_id == first, what="the resumed session")
            await until_idle(pilot)
            assert app.status.session == first
            assert "the first conversation" in transcript_text(app)
            assert "the second one" not in transcript_text(app)
            assert picker is not app.screen


async def test_at_80x24_nothing_that_matters_is_cut(repo):
    edit = {
        "name": API_NAME,
        "input": {
            "command": "str_replace",
            "path": "app.py",
            "old_str": "return 41",
            "new_str": "return 42",
        },
    }
    with make_agent(
        repo,
        [
            {
                "text": "Fixing.",
                "tool_calls": [edit],
                "usage": {"input_tokens": 123456, "output_tokens": 789},
            }
        ],
    ) as agent:
        app = make_app(agent)
        async with app.run_test(size=(80, 24)) as pilot:
            await send(pilot, "fix it")
            await modal(pilot)
            shown = screen_text(app)
            assert "Yes (y)" in shown and "No (n / esc)" in shown
            status = shown.rstrip("\n").splitlines()[-1]
            assert "ctx" in status and agent.session_id in status
            await pilot.press("n")
            await until_idle(pilot)
