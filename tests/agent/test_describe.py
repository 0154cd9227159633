"""User-facing words for tool calls and decisions (issue 13, item 10)."""

from __future__ import annotations

from agent.describe import (
    SESSION_ALLOWED,
    checkpoint_label,
    checkpoint_label_for,
    count,
    decision_text,
    tool_question,
    tool_title,
)

EDITOR = "str_replace_based_edit_tool"


def test_questions_name_the_file_or_the_command():
    assert tool_question(EDITOR, {"command": "str_replace", "path": "calc.py"}) == "Edit calc.py?"
    assert tool_question(EDITOR, {"command": "create", "path": "new.py"}) == "Write new.py?"
    assert tool_question("bash", {"command": "pytest -q"}) == "Run `pytest -q`?"
    assert tool_title("grep", {"pattern": "TODO", "path": "src"}) == "Search for `TODO` in src"
    assert tool_title("mcp__git__status", {}) == "Use status (git)"
    long = tool_title("bash", {"command": "echo " + "x" * 200})
    assert len(long) < 80 and long.endswith("…`")


def test_decisions_are_worded_for_people():
    assert decision_text("allow", "callback", SESSION_ALLOWED) == "✓ allowed for this session"
    assert decision_text("allow", "callback", "approved by the user") == "✓ allowed by you"
    assert decision_text("allow", "mode", "acceptEdits mode") is None
    assert decision_text("allow", "mode", "read-only") is None
    assert decision_text("deny", "callback", "denied by the user") == "✗ denied by you"
    assert decision_text("deny", "rule", "denied by rule bash(rm)") == "✗ denied by rule bash(rm)"
    for args in (("allow", "rule", "allowed by rule"), ("deny", "headless", "x; no one to ask")):
        text = decision_text(*args)
        assert "(rule)" not in text and "(headless)" not in text and "callback" not in text


def test_counts_and_labels():
    assert (count(1, "file"), count(2, "file"), count(0, "file")) == (
        "1 file",
        "2 files",
        "0 files",
    )
    assert (
        checkpoint_label_for(EDITOR, {"command": "str_replace", "path": "a.py"})
        == "before edit a.py"
    )
    assert checkpoint_label_for("bash", {"command": "make"}) == "before run `make`"
    old = checkpoint_label(f"before {EDITOR}: str_replace")
    assert EDITOR not in old and "edit" in old
    assert checkpoint_label("fix the bug") == "fix the bug"
