"""The package surface the runtime uses: the factory, the protocol, specs, cleanup."""

from __future__ import annotations

import json
from pathlib import Path

import tools
from tools import BashTool, EditorTool, GlobTool, GrepTool, MemoryTool, close_all, default_tools
from tools.base import Tool, ToolContext, ToolResult


def test_default_tools_without_memory():
    ts = default_tools(None)
    assert [t.name for t in ts] == ["bash", "str_replace_based_edit_tool", "glob", "grep"]


def test_default_tools_with_memory(tmp_path: Path):
    ts = default_tools(tmp_path / "mem")
    assert [t.name for t in ts][-1] == "memory"
    assert isinstance(ts[-1], MemoryTool)


def test_every_tool_follows_the_protocol(tmp_path: Path):
    for t in default_tools(tmp_path / "mem"):
        assert isinstance(t, Tool)
        assert isinstance(t.description(), str) and t.description()
        json.dumps(t.anthropic_spec())
        spec = t.openai_spec()
        json.dumps(spec)
        assert spec["type"] == "function" and spec["function"]["name"] == t.name
        assert spec["function"]["parameters"]["type"] == "object"
        assert t.input_model.model_json_schema()["type"] == "object"


def test_invalid_input_never_raises(tmp_path: Path):
    ctx = ToolContext(cwd=tmp_path)
    for t in default_tools(tmp_path / "mem"):
        for bad in ({}, {"command": 5}, {"nonsense": True}, None, [], {"pattern": None}):
            r = t.run(bad, ctx)  # type: ignore[arg-type]
            assert isinstance(r, ToolResult) and r.is_error, (t.name, bad, r)
    close_all(ctx)


def test_read_only_flags(tmp_path: Path):
    b, e, g, gr, m = default_tools(tmp_path / "m")
    assert e.is_read_only({"command": "view"}) and not e.is_read_only({"command": "create"})
    # issue 11: lone read-only shell commands are read-only; anything that writes is not.
    assert b.is_read_only({"command": "ls"}) and not b.is_read_only({"command": "touch x"})
    assert not b.is_read_only(None)  # type: ignore[arg-type]
    assert g.is_read_only({"pattern": "*"}) and gr.is_read_only({"pattern": "x"})
    assert m.is_read_only({"command": "view"}) and not m.is_read_only({"command": "delete"})
    assert not e.is_read_only(None)  # type: ignore[arg-type]


def test_close_all_without_anything_started(tmp_path: Path):
    ctx = ToolContext(cwd=tmp_path)
    close_all(ctx)
    assert ctx.state == {}


def test_close_all_survives_a_failing_closer(tmp_path: Path):
    ctx = ToolContext(cwd=tmp_path)
    calls = []

    def boom():
        raise RuntimeError("x")

    ctx.state["_closers"] = {"a": boom, "b": lambda: calls.append("b")}
    close_all(ctx)
    assert calls == ["b"] and ctx.state["_closers"] == {}


def test_exports():
    for name in (
        "BashTool",
        "EditorTool",
        "GlobTool",
        "GrepTool",
        "MemoryTool",
        "MemoryConfig",
        "memory_root",
        "MEMORY_SYSTEM_PROMPT",
        "default_tools",
        "close_all",
    ):
        assert hasattr(tools, name)
    assert BashTool and EditorTool and GlobTool and GrepTool
