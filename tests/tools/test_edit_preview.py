"""Diffs of editor calls carry the file's real line numbers (issue 13, item 7)."""

from __future__ import annotations

from pathlib import Path

from tools.edit_preview import preview_edit, text_diff
from tools.editor import EditorTool

CALC = (
    "".join(f"line {n}\n" for n in range(1, 4))
    + "def add(a, b):\n    return a - b\n"
    + "".join(f"tail {n}\n" for n in range(1, 8))
)
FIX = {
    "command": "str_replace",
    "path": "calc.py",
    "old_str": "    return a - b",
    "new_str": "    return a + b",
}


def test_a_str_replace_on_line_5_is_shown_at_line_5_with_context(tree: Path, ctx):
    (tree / "calc.py").write_text(CALC)
    preview = preview_edit(FIX, ctx)
    assert preview.error is None
    assert preview.lines[:2] == ["--- a/calc.py", "+++ b/calc.py"]
    # Three lines of context each side: lines 2-8 of the old file, 2-8 of the new.
    assert preview.lines[2] == "@@ -2,7 +2,7 @@"
    assert preview.lines[3:] == [
        " line 2",
        " line 3",
        " def add(a, b):",
        "-    return a - b",
        "+    return a + b",
        " tail 1",
        " tail 2",
        " tail 3",
    ]
    assert (preview.added, preview.removed) == (1, 1)
    assert (tree / "calc.py").read_text() == CALC, "a preview writes nothing"


def test_the_result_of_the_edit_carries_the_same_diff(tree: Path, ctx):
    (tree / "calc.py").write_text(CALC)
    before = preview_edit(FIX, ctx)
    result = EditorTool().run(FIX, ctx)
    assert not result.is_error
    assert result.diff == before.text()
    assert "@@ -2,7 +2,7 @@" in result.diff


def test_insert_and_far_apart_hunks_are_numbered_in_the_file():
    old = "".join(f"{n}\n" for n in range(1, 101))
    new = old.replace("50\n", "50\nfifty\n").replace("90\n", "ninety\n")
    lines = text_diff("n.txt", old, new, context=1)
    hunks = [ln for ln in lines if ln.startswith("@@")]
    assert hunks == ["@@ -50,2 +50,3 @@", "@@ -89,3 +90,3 @@"]


def test_insert_preview_and_a_change_at_the_top(tree: Path, ctx):
    (tree / "a.txt").write_text("one\ntwo\nthree\nfour\nfive\nsix\n")
    preview = preview_edit(
        {"command": "insert", "path": "a.txt", "insert_line": 5, "insert_text": "five and a half"},
        ctx,
    )
    assert preview.lines[2] == "@@ -3,4 +3,5 @@"
    assert "+five and a half" in preview.lines
    top = text_diff("a.txt", "one\ntwo\n", "zero\ntwo\n")
    assert top[2] == "@@ -1,2 +1,2 @@"


def test_new_file_and_failing_calls(tree: Path, ctx):
    created = preview_edit(
        {
            "command": "create",
            "path": "pkg/new.py",
            "file_text": "".join(f"x{n}\n" for n in range(50)),
        },
        ctx,
    )
    assert created.new_file and created.error is None
    assert created.lines[0] == "+++ b/pkg/new.py (new file, 50 lines)"
    assert created.lines[1] == "+x0" and created.lines[-1] == "… 10 more lines"
    assert not (tree / "pkg").exists()
    (tree / "calc.py").write_text(CALC)
    missing = preview_edit({**FIX, "old_str": "not there"}, ctx)
    assert missing.error and "No match" in missing.error and not missing.lines
    outside = preview_edit({**FIX, "path": "../escape.py"}, ctx)
    assert outside.error and "outside the work tree" in outside.error


def test_overwrite_preview_is_a_diff_against_the_old_content(tree: Path, ctx):
    (tree / "calc.py").write_text(CALC)
    preview = preview_edit(
        {"command": "create", "path": "calc.py", "file_text": CALC.replace("tail 7", "tail seven")},
        ctx,
    )
    assert not preview.new_file
    assert "-tail 7" in preview.lines and "+tail seven" in preview.lines
    assert any(ln.startswith("@@ -9,") for ln in preview.lines)


def test_crlf_files_diff_without_carriage_returns(tree: Path, ctx):
    (tree / "w.txt").write_bytes(b"a\r\nb\r\nc\r\n")
    preview = preview_edit(
        {"command": "str_replace", "path": "w.txt", "old_str": "b", "new_str": "B"}, ctx
    )
    assert preview.lines[2:] == ["@@ -1,3 +1,3 @@", " a", "-b", "+B", " c"]
