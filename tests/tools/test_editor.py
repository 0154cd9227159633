"""str_replace_based_edit_tool on real files: every command, every error, bytes preserved."""

from __future__ import annotations

import os
import stat

import pytest

from tools.base import ToolContext
from tools.editor import EditorTool

E = EditorTool()


def run(ctx: ToolContext, **args):
    return E.run(args, ctx)


def edit_ok(ctx: ToolContext, **args) -> str:
    r = E.run(args, ctx)
    assert not r.is_error, r.content
    return r.content


def edit_err(ctx: ToolContext, **args) -> str:
    r = E.run(args, ctx)
    assert r.is_error, r.content
    return r.content


# -- specs -----------------------------------------------------------------------------------


def test_specs():
    assert E.anthropic_spec() == {
        "type": "text_editor_20250728",
        "name": "str_replace_based_edit_tool",
    }
    assert EditorTool(max_characters=5000).anthropic_spec()["max_characters"] == 5000
    spec = E.openai_spec()
    assert spec["type"] == "function"
    fn = spec["function"]
    assert fn["name"] == "str_replace_based_edit_tool"
    props = fn["parameters"]["properties"]
    assert props["command"]["enum"] == ["view", "create", "str_replace", "insert"]
    assert set(props) == {
        "command",
        "path",
        "file_text",
        "old_str",
        "new_str",
        "insert_line",
        "insert_text",
        "view_range",
    }
    assert fn["parameters"]["required"] == ["command", "path"]
    assert E.is_read_only({"command": "view", "path": "x"})
    for c in ("create", "str_replace", "insert"):
        assert not E.is_read_only({"command": c, "path": "x"})


# -- view ------------------------------------------------------------------------------------


def test_view_file_cat_n(ctx, tree):
    (tree / "a.py").write_text("one\n\ttwo\nthree\n")
    out = edit_ok(ctx, command="view", path="a.py")
    assert out == "     1\tone\n     2\t\ttwo\n     3\tthree"


def test_view_range(ctx, tree):
    (tree / "a.txt").write_text("".join(f"line{i}\n" for i in range(1, 11)))
    assert (
        edit_ok(ctx, command="view", path="a.txt", view_range=[3, 4])
        == "     3\tline3\n     4\tline4"
    )
    assert (
        edit_ok(ctx, command="view", path="a.txt", view_range=[9, -1])
        == "     9\tline9\n    10\tline10"
    )
    # end past the end is clamped
    assert edit_ok(ctx, command="view", path="a.txt", view_range=[10, 50]) == "    10\tline10"


@pytest.mark.parametrize(
    "rng,needle",
    [
        ([0, 3], "start must be >= 1"),
        ([20, 30], "past the end"),
        ([5, 2], "end must be >= start"),
        ([1], "two integers"),
    ],
)
def test_view_range_errors(ctx, tree, rng, needle):
    (tree / "a.txt").write_text("".join(f"line{i}\n" for i in range(1, 11)))
    assert needle in edit_err(ctx, command="view", path="a.txt", view_range=rng)


def test_view_empty_file(ctx, tree):
    (tree / "e.txt").write_text("")
    assert "is empty" in edit_ok(ctx, command="view", path="e.txt")


def test_view_directory_two_levels(ctx, tree):
    (tree / "src" / "pkg" / "deep").mkdir(parents=True)
    (tree / "src" / "pkg" / "deep" / "x.py").write_text("")
    (tree / "src" / "pkg" / "m.py").write_text("")
    (tree / "src" / "main.py").write_text("")
    (tree / ".hidden").mkdir()
    (tree / ".hidden" / "h").write_text("")
    (tree / ".env").write_text("")
    (tree / "node_modules" / "lib").mkdir(parents=True)
    (tree / "README.md").write_text("")
    out = edit_ok(ctx, command="view", path=".")
    lines = out.splitlines()
    assert "2 levels deep" in lines[0]
    assert "./README.md" in lines
    assert "./src/" in lines
    assert "./src/main.py" in lines
    assert "./src/pkg/" in lines
    assert not any("m.py" in l or "deep" in l for l in lines[1:])  # level 3
    assert not any("hidden" in l or ".env" in l or "node_modules" in l for l in lines[1:])


def test_view_directory_with_range_is_error(ctx, tree):
    assert "only applies to files" in edit_err(ctx, command="view", path=".", view_range=[1, 2])


def test_view_missing(ctx):
    assert "does not exist" in edit_err(ctx, command="view", path="nope.py")


def test_view_truncation_lines(ctx, tree):
    (tree / "big.txt").write_text("".join(f"{i}\n" for i in range(1, 3001)))
    out = (
        EditorTool(max_characters=1_000_000)
        .run({"command": "view", "path": "big.txt"}, ctx)
        .content
    )
    assert "  2000\t2000" in out and "  2001\t" not in out
    assert "view_range [2001," in out and "of 3000" in out


def test_view_truncation_chars(ctx, tree):
    (tree / "wide.txt").write_text(("x" * 100 + "\n") * 1000)
    out = edit_ok(ctx, command="view", path="wide.txt")
    assert len(out) < 17_000
    assert "Output truncated" in out and "view_range [" in out
    small = (
        EditorTool(max_characters=1000).run({"command": "view", "path": "wide.txt"}, ctx).content
    )
    assert len(small) < 1300 and "Output truncated" in small


def test_view_single_huge_line(ctx, tree):
    (tree / "min.js").write_text("a" * 50_000)
    out = edit_ok(ctx, command="view", path="min.js")
    assert "line 1 cut" in out and len(out) < 17_000


def test_view_binary_refused(ctx, tree):
    (tree / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert "binary" in edit_err(ctx, command="view", path="img.png")
    (tree / "noise.bin").write_bytes(bytes(range(1, 32)) * 100 + b"\xff\xfe")
    assert "not a text file" in edit_err(ctx, command="view", path="noise.bin")


def test_binary_refused_for_edits(ctx, tree):
    (tree / "b.bin").write_bytes(b"abc\x00def")
    assert "binary" in edit_err(
        ctx, command="str_replace", path="b.bin", old_str="abc", new_str="x"
    )
    assert "binary" in edit_err(ctx, command="insert", path="b.bin", insert_line=0, insert_text="x")
    assert (tree / "b.bin").read_bytes() == b"abc\x00def"


# -- create ----------------------------------------------------------------------------------


def test_create_with_parents(ctx, tree):
    out = edit_ok(ctx, command="create", path="a/b/c.py", file_text="print(1)\n")
    assert "created" in out
    assert (tree / "a/b/c.py").read_bytes() == b"print(1)\n"
    mode = stat.S_IMODE((tree / "a/b/c.py").stat().st_mode)
    assert mode == 0o666 & ~_umask()


def _umask() -> int:
    m = os.umask(0o022)
    os.umask(m)
    return m


def test_create_no_trailing_newline_kept(ctx, tree):
    edit_ok(ctx, command="create", path="n.txt", file_text="no newline")
    assert (tree / "n.txt").read_bytes() == b"no newline"


def test_create_overwrite_keeps_mode_and_crlf(ctx, tree):
    p = tree / "run.sh"
    p.write_bytes(b"#!/bin/sh\r\necho hi\r\n")
    p.chmod(0o751)
    out = edit_ok(ctx, command="create", path="run.sh", file_text="#!/bin/sh\necho bye\n")
    assert "overwritten" in out
    assert p.read_bytes() == b"#!/bin/sh\r\necho bye\r\n"
    assert stat.S_IMODE(p.stat().st_mode) == 0o751


def test_create_errors(ctx, tree):
    assert "file_text is required" in edit_err(ctx, command="create", path="x.py")
    (tree / "d").mkdir()
    assert "is a directory" in edit_err(ctx, command="create", path="d", file_text="x")
    (tree / "f").write_text("x")
    assert "parent of it is a file" in edit_err(
        ctx, command="create", path="f/g.txt", file_text="x"
    )


# -- str_replace -----------------------------------------------------------------------------


def test_str_replace_ok_with_snippet(ctx, tree):
    (tree / "app.py").write_text("def f():\n    return 1\n\nx = f()\n")
    out = edit_ok(ctx, command="str_replace", path="app.py", old_str="return 1", new_str="return 2")
    assert (tree / "app.py").read_text() == "def f():\n    return 2\n\nx = f()\n"
    assert "has been edited" in out and "     2\t    return 2" in out


def test_str_replace_delete_when_new_str_omitted(ctx, tree):
    (tree / "a.txt").write_text("keep\ndrop me\nkeep2\n")
    edit_ok(ctx, command="str_replace", path="a.txt", old_str="drop me\n")
    assert (tree / "a.txt").read_text() == "keep\nkeep2\n"


def test_str_replace_multiple_matches_reports_lines(ctx, tree):
    lines = ["x"] * 25
    for n in (4, 9, 20):
        lines[n - 1] = "dup()"
    (tree / "app.py").write_text("\n".join(lines) + "\n")
    msg = edit_err(ctx, command="str_replace", path="app.py", old_str="dup()", new_str="y")
    assert msg.startswith(
        "old_str appears 3 times in app.py (lines 4, 9, 20); add more context to make it unique"
    )


def test_str_replace_overlapping_is_not_unique(ctx, tree):
    (tree / "a.txt").write_text("aaa\n")
    assert "appears 2 times" in edit_err(
        ctx, command="str_replace", path="a.txt", old_str="aa", new_str="b"
    )


def test_str_replace_no_match(ctx, tree):
    (tree / "a.py").write_text("def f():\n\treturn 1\n")
    msg = edit_err(ctx, command="str_replace", path="a.py", old_str="nothing like it", new_str="x")
    assert "No match" in msg and "a.py" in msg and "nothing was changed" in msg


def test_str_replace_no_match_whitespace_hint(ctx, tree):
    (tree / "a.py").write_text("def f():\n\treturn 1\n")
    msg = edit_err(
        ctx, command="str_replace", path="a.py", old_str="def f():\n    return 1", new_str="x"
    )
    assert "No match" in msg and "whitespace" in msg and "line(s) 1" in msg
    assert (tree / "a.py").read_text() == "def f():\n\treturn 1\n"  # strict: nothing applied


def test_str_replace_line_number_prefix_hint(ctx, tree):
    (tree / "a.py").write_text("alpha\nbeta\n")
    msg = edit_err(
        ctx, command="str_replace", path="a.py", old_str="     1\talpha\n     2\tbeta", new_str="x"
    )
    assert "line-number prefixes" in msg


def test_str_replace_errors(ctx, tree):
    (tree / "a.txt").write_text("abc\n")
    assert "old_str is required" in edit_err(ctx, command="str_replace", path="a.txt", new_str="x")
    assert "must not be empty" in edit_err(
        ctx, command="str_replace", path="a.txt", old_str="", new_str="x"
    )
    assert "identical" in edit_err(
        ctx, command="str_replace", path="a.txt", old_str="abc", new_str="abc"
    )
    assert "does not exist" in edit_err(
        ctx, command="str_replace", path="zz.txt", old_str="a", new_str="b"
    )
    (tree / "d").mkdir()
    assert "is a directory" in edit_err(
        ctx, command="str_replace", path="d", old_str="a", new_str="b"
    )


def test_str_replace_keeps_mode(ctx, tree):
    p = tree / "s.sh"
    p.write_text("echo a\n")
    p.chmod(0o700)
    edit_ok(ctx, command="str_replace", path="s.sh", old_str="a", new_str="b")
    assert stat.S_IMODE(p.stat().st_mode) == 0o700
    assert not [n for n in os.listdir(tree) if n.endswith(".godwit-tmp")]


# -- insert ----------------------------------------------------------------------------------


def test_insert_positions(ctx, tree):
    p = tree / "a.txt"
    p.write_text("one\ntwo\n")
    edit_ok(ctx, command="insert", path="a.txt", insert_line=0, insert_text="zero")
    assert p.read_text() == "zero\none\ntwo\n"
    edit_ok(ctx, command="insert", path="a.txt", insert_line=2, insert_text="one-and-half\n")
    assert p.read_text() == "zero\none\none-and-half\ntwo\n"
    out = edit_ok(ctx, command="insert", path="a.txt", insert_line=4, insert_text="end1\nend2")
    assert p.read_text() == "zero\none\none-and-half\ntwo\nend1\nend2\n"
    assert "     5\tend1" in out


def test_insert_accepts_new_str(ctx, tree):
    p = tree / "a.txt"
    p.write_text("one\n")
    edit_ok(ctx, command="insert", path="a.txt", insert_line=1, new_str="two")
    assert p.read_text() == "one\ntwo\n"


def test_insert_at_end_without_trailing_newline(ctx, tree):
    p = tree / "a.txt"
    p.write_bytes(b"one\ntwo")
    edit_ok(ctx, command="insert", path="a.txt", insert_line=2, insert_text="three")
    assert p.read_bytes() == b"one\ntwo\nthree"
    edit_ok(ctx, command="insert", path="a.txt", insert_line=1, insert_text="1.5")
    assert p.read_bytes() == b"one\n1.5\ntwo\nthree"


def test_insert_into_empty_file(ctx, tree):
    p = tree / "e.txt"
    p.write_text("")
    edit_ok(ctx, command="insert", path="e.txt", insert_line=0, insert_text="first")
    assert p.read_text() == "first\n"


def test_insert_errors(ctx, tree):
    (tree / "a.txt").write_text("one\ntwo\n")
    assert "insert_line is required" in edit_err(
        ctx, command="insert", path="a.txt", insert_text="x"
    )
    assert "insert_text is required" in edit_err(ctx, command="insert", path="a.txt", insert_line=1)
    msg = edit_err(ctx, command="insert", path="a.txt", insert_line=5, insert_text="x")
    assert "Invalid insert_line 5" in msg and "has 2 lines" in msg and "between 0" in msg
    assert "Invalid insert_line -1" in edit_err(
        ctx, command="insert", path="a.txt", insert_line=-1, insert_text="x"
    )


# -- bytes preserved -------------------------------------------------------------------------


def test_crlf_preserved(ctx, tree):
    p = tree / "win.txt"
    p.write_bytes(b"alpha\r\nbeta\r\ngamma\r\n")
    out = edit_ok(ctx, command="view", path="win.txt")
    assert "\r" not in out
    edit_ok(
        ctx,
        command="str_replace",
        path="win.txt",
        old_str="alpha\nbeta",
        new_str="ALPHA\nBETA\nextra",
    )
    assert p.read_bytes() == b"ALPHA\r\nBETA\r\nextra\r\ngamma\r\n"
    edit_ok(ctx, command="insert", path="win.txt", insert_line=0, insert_text="top\nmore")
    assert p.read_bytes() == b"top\r\nmore\r\nALPHA\r\nBETA\r\nextra\r\ngamma\r\n"
    # the model may also send CRLF itself
    edit_ok(ctx, command="str_replace", path="win.txt", old_str="top\r\nmore", new_str="TOP")
    assert p.read_bytes() == b"TOP\r\nALPHA\r\nBETA\r\nextra\r\ngamma\r\n"


def test_crlf_without_final_newline(ctx, tree):
    p = tree / "w.txt"
    p.write_bytes(b"a\r\nb")
    edit_ok(ctx, command="str_replace", path="w.txt", old_str="b", new_str="c")
    assert p.read_bytes() == b"a\r\nc"


def test_mixed_line_endings_untouched_elsewhere(ctx, tree):
    p = tree / "m.txt"
    p.write_bytes(b"a\r\nb\nc\r\n")
    edit_ok(ctx, command="str_replace", path="m.txt", old_str="b", new_str="B")
    assert p.read_bytes() == b"a\r\nB\nc\r\n"
    assert edit_ok(ctx, command="view", path="m.txt") == "     1\ta\n     2\tB\n     3\tc"
    assert "mixes CRLF" in edit_err(
        ctx, command="str_replace", path="m.txt", old_str="a\nB", new_str="x"
    )


def test_tabs_preserved(ctx, tree):
    p = tree / "Makefile"
    p.write_bytes(b"all:\n\tcc -o x x.c\n\techo done\n")
    edit_ok(
        ctx,
        command="str_replace",
        path="Makefile",
        old_str="\techo done",
        new_str="\techo finished",
    )
    assert p.read_bytes() == b"all:\n\tcc -o x x.c\n\techo finished\n"


def test_bom_preserved(ctx, tree):
    p = tree / "bom.txt"
    p.write_bytes(b"\xef\xbb\xbfhello\nworld\n")
    assert edit_ok(ctx, command="view", path="bom.txt") == "     1\thello\n     2\tworld"
    edit_ok(ctx, command="str_replace", path="bom.txt", old_str="hello", new_str="héllo")
    assert p.read_bytes() == b"\xef\xbb\xbfh\xc3\xa9llo\nworld\n"


def test_latin1_round_trip(ctx, tree):
    p = tree / "old.txt"
    original = "caf\xe9 cr\xe8me\nna\xefve\n".encode("latin-1")
    p.write_bytes(original)
    assert "café crème" in edit_ok(ctx, command="view", path="old.txt")
    edit_ok(ctx, command="str_replace", path="old.txt", old_str="naïve", new_str="naïve!")
    assert p.read_bytes() == original.replace(b"na\xefve", b"na\xefve!")
    msg = edit_err(ctx, command="str_replace", path="old.txt", old_str="café", new_str="café →")
    assert "latin-1" in msg and "→" in msg
    assert p.read_bytes() == original.replace(b"na\xefve", b"na\xefve!")


def test_trailing_newline_absent_kept(ctx, tree):
    p = tree / "a.txt"
    p.write_bytes(b"x = 1\ny = 2")
    edit_ok(ctx, command="str_replace", path="a.txt", old_str="x = 1", new_str="x = 3")
    assert p.read_bytes() == b"x = 3\ny = 2"


def test_unusual_separators_are_not_lines(ctx, tree):
    p = tree / "u.txt"
    p.write_bytes("a\x0cb\u2028c\nd\n".encode())
    out = edit_ok(ctx, command="view", path="u.txt")
    assert out.count("\n") == 1  # two lines: form feed and U+2028 are not line breaks
    edit_ok(ctx, command="insert", path="u.txt", insert_line=1, insert_text="mid")
    assert p.read_bytes() == "a\x0cb\u2028c\nmid\nd\n".encode()


# -- paths -----------------------------------------------------------------------------------


def test_relative_and_absolute_inside(ctx, tree):
    (tree / "sub").mkdir()
    (tree / "sub" / "f.txt").write_text("x\n")
    assert edit_ok(ctx, command="view", path=str(tree / "sub" / "f.txt")) == "     1\tx"
    assert edit_ok(ctx, command="view", path="sub/../sub/f.txt") == "     1\tx"


def test_path_escapes_refused(ctx, tree, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    for p in ("../outside.txt", str(outside), "sub/../../outside.txt", "/etc/passwd"):
        msg = edit_err(ctx, command="view", path=p)
        assert "outside the work tree" in msg, (p, msg)
    msg = edit_err(ctx, command="create", path="../evil.txt", file_text="x")
    assert "outside the work tree" in msg
    assert not (tmp_path / "evil.txt").exists()
    assert "not expanded" in edit_err(ctx, command="view", path="~/x")
    assert "NUL" in edit_err(ctx, command="view", path="a\x00b")
    assert "must not be empty" in edit_err(ctx, command="view", path="")


def test_symlink_out_refused(ctx, tree, tmp_path):
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    (secret_dir / "key").write_text("k\n")
    os.symlink(secret_dir, tree / "link")
    os.symlink(secret_dir / "key", tree / "keylink")
    for p in ("link/key", "keylink"):
        msg = edit_err(ctx, command="view", path=p)
        assert "symbolic link" in msg and "outside the work tree" in msg
    assert "symbolic link" in edit_err(ctx, command="create", path="link/new.txt", file_text="x")
    assert "symbolic link" in edit_err(
        ctx, command="str_replace", path="keylink", old_str="k", new_str="z"
    )
    assert not (secret_dir / "new.txt").exists()
    assert (secret_dir / "key").read_text() == "k\n"


def test_symlink_inside_tree_edits_target(ctx, tree):
    (tree / "real.txt").write_text("a\n")
    os.symlink("real.txt", tree / "alias.txt")
    edit_ok(ctx, command="str_replace", path="alias.txt", old_str="a", new_str="b")
    assert (tree / "real.txt").read_text() == "b\n"
    assert (tree / "alias.txt").is_symlink()


def test_cwd_given_through_symlink(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "via")
    c = ToolContext(cwd=tmp_path / "via")
    edit_ok(c, command="create", path="f.txt", file_text="x\n")
    assert (real / "f.txt").read_text() == "x\n"
    assert edit_ok(c, command="view", path=str(tmp_path / "via" / "f.txt")) == "     1\tx"


# -- validation ------------------------------------------------------------------------------


def test_invalid_args_are_results(ctx):
    r = E.run({"command": "explode", "path": "x"}, ctx)
    assert r.is_error and r.content.startswith("Invalid input for str_replace_based_edit_tool")
    r = E.run({"path": "x"}, ctx)
    assert r.is_error and "command" in r.content
    r = E.run({"command": "view", "path": "x", "bogus": 1}, ctx)
    assert r.is_error and "bogus" in r.content
    r = E.run("not a dict", ctx)  # type: ignore[arg-type]
    assert r.is_error


def test_permission_denied_is_result(ctx, tree):
    if os.geteuid() == 0:
        pytest.skip("root ignores permission bits")
    p = tree / "ro.txt"
    p.write_text("x\n")
    p.chmod(0o000)
    try:
        assert "Permission denied" in edit_err(ctx, command="view", path="ro.txt")
    finally:
        p.chmod(0o644)


def test_odd_files(ctx, tree, monkeypatch):
    (tree / "badbom.txt").write_bytes(b"\xef\xbb\xbfok \xff\xfe")
    assert "byte-order mark but is not valid UTF-8" in edit_err(
        ctx, command="view", path="badbom.txt"
    )
    os.mkfifo(tree / "pipe")
    assert "not a regular file" in edit_err(ctx, command="view", path="pipe")  # and does not block
    (tree / "big.txt").write_text("x" * 100)
    monkeypatch.setattr("tools.editor.MAX_EDIT_BYTES", 50)
    assert "too large for this tool" in edit_err(ctx, command="view", path="big.txt")
