"""The plain-text helpers behind the transcript and the approval modal."""

from __future__ import annotations

from agent.ui.format import compact_number, edit_diff, key_argument, one_line, preview
from agent.ui.slash_commands import COMMANDS, parse


def test_key_argument_picks_what_the_call_does():
    assert key_argument("bash", {"command": "pytest -q"}) == "pytest -q"
    assert (
        key_argument("str_replace_based_edit_tool", {"command": "view", "path": "src/a.py"})
        == "view src/a.py"
    )
    assert key_argument("glob", {"pattern": "**/*.py"}) == "**/*.py"
    assert key_argument("custom", {"a": 1, "b": "x"}) == "a=1, b='x'"


def test_preview_counts_what_it_leaves_out():
    assert preview("1\n2\n3\n4\n5\n6\n") == ("1\n2\n3\n4", 2)
    assert preview("only") == ("only", 0)
    assert preview("") == ("", 0)


def test_numbers_and_lines_fit_the_status_bar():
    assert [compact_number(n) for n in (0, 999, 1000, 12345, 200_000, 2_500_000)] == [
        "0",
        "999",
        "1k",
        "12.3k",
        "200k",
        "2.5M",
    ]
    assert one_line("a\n  b\tc") == "a b c"
    assert one_line("x" * 50, 10) == "x" * 9 + "…"


def test_edit_diff_for_each_editor_command():
    replace = edit_diff(
        {
            "command": "str_replace",
            "path": "a.py",
            "old_str": "x = 1\ny = 2",
            "new_str": "x = 1\ny = 3",
        }
    )
    assert "-y = 2" in replace.plain and "+y = 3" in replace.plain and " x = 1" in replace.plain
    deletion = edit_diff({"command": "str_replace", "path": "a.py", "old_str": "gone"})
    assert "-gone" in deletion.plain
    create = edit_diff({"command": "create", "path": "n.py", "file_text": "A = 1\nB = 2\n"})
    assert create.plain.splitlines() == ["+++ n.py (new file)", "+A = 1", "+B = 2"]
    insert = edit_diff(
        {"command": "insert", "path": "n.py", "insert_line": 3, "insert_text": "C = 3"}
    )
    assert "after line 3" in insert.plain and "+C = 3" in insert.plain


def test_slash_command_parsing():
    command, name, rest = parse("/compact  keep the API notes")
    assert command is COMMANDS["compact"] and name == "compact" and rest == " keep the API notes"
    assert parse("/COMPACT")[0] is COMMANDS["compact"]
    assert parse("/nope x") == (None, "nope", "x")
