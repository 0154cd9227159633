"""An MCP server's tools as Godwit tools: `mcp__<server>__<tool>`, its JSON schema, its results.

Names follow Claude Code: `mcp__` + server + `__` + tool, with any character the model APIs do
not accept in a tool name replaced by `_`, cut to 64 characters. Results: text blocks joined,
images kept as image blocks (base64 with their media type) for providers that take them,
embedded resources as their text, links as a line; `isError` makes an error result; a server that
gives no answer becomes an error result that says so.

MCP tools are never counted as read-only (a server's own `readOnlyHint` is its claim, not a
guarantee), so they are asked about unless a rule allows them, and a checkpoint is taken first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from agent.mcp.manager import McpCallError, McpManager
from agent.mcp.names import PREFIX, split_name, tool_name  # noqa: F401 - re-exported
from tools.base import ToolContext, ToolResult

MAX_DESCRIPTION = 2048


class _AnyInput(BaseModel):
    """MCP tools bring their own JSON schema; the server validates the arguments."""

    model_config = ConfigDict(extra="allow")


@dataclass
class Output:
    """A converted CallToolResult."""

    text: str
    images: list[dict[str, str]] = field(default_factory=list)  # {"media_type", "data"}
    is_error: bool = False


def convert(result: Any) -> Output:
    """The package's CallToolResult as text plus image blocks."""
    texts: list[str] = []
    images: list[dict[str, str]] = []
    for block in getattr(result, "content", None) or []:
        kind = getattr(block, "type", None)
        if kind == "text":
            texts.append(block.text)
        elif kind == "image":
            images.append({"media_type": block.mime_type, "data": block.data})
        elif kind == "audio":
            texts.append(f"[audio: {block.mime_type}, not shown]")
        elif kind == "resource":
            res = block.resource
            text = getattr(res, "text", None)
            texts.append(
                text
                if text is not None
                else f"[resource {res.uri}: {getattr(res, 'mime_type', None) or 'binary'}]"
            )
        elif kind == "resource_link":
            texts.append(
                f"[resource link: {block.uri}"
                + (f" — {block.description}]" if block.description else "]")
            )
    structured = getattr(result, "structured_content", None)
    if not texts and structured is not None:
        texts.append(json.dumps(structured, ensure_ascii=False))
    text = "\n".join(texts)
    if not text and not images:
        text = "(no output)"
    return Output(text=text, images=images, is_error=bool(getattr(result, "is_error", False)))


class McpTool:
    """One tool of one connected server, callable like any Godwit tool."""

    input_model = _AnyInput
    writes_work_tree = True

    def __init__(self, manager: McpManager, server: str, tool: Any) -> None:
        self.manager = manager
        self.server = server
        self.tool = tool  # mcp_types.Tool
        self.name = tool_name(server, tool.name)
        text = (tool.description or tool.title or f"{tool.name} from MCP server {server}").strip()
        self._description = text[:MAX_DESCRIPTION]
        schema = tool.input_schema if isinstance(tool.input_schema, dict) else {}
        self.schema = {"type": "object", **schema}
        self.schema.setdefault("properties", {})

    def description(self) -> str:
        return self._description

    def anthropic_spec(self) -> dict[str, Any]:
        return {"name": self.name, "description": self._description, "input_schema": self.schema}

    def openai_spec(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self._description,
                "parameters": self.schema,
            },
        }

    def is_read_only(self, args: dict[str, Any]) -> bool:
        return False

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        """Call the tool on its server; every failure is an error result for the model."""
        if not isinstance(args, dict):
            return ToolResult(is_error=True, content=f"{self.name} takes a JSON object.")
        try:
            result = self.manager.call(self.server, self.tool.name, args, ctx.cancel)
        except McpCallError as exc:
            return ToolResult(is_error=True, content=str(exc))
        out = convert(result)
        return make_result(out)


def make_result(out: Output) -> ToolResult:
    """A ToolResult carrying images where the ToolResult model has room for them."""
    if out.images and "images" in ToolResult.model_fields:
        return ToolResult(content=out.text, is_error=out.is_error, images=out.images)
    note = "".join(
        f"\n[image: {i['media_type']}, {len(i['data']) * 3 // 4} bytes]" for i in out.images
    )
    return ToolResult(content=(out.text + note).strip() or "(no output)", is_error=out.is_error)


def mcp_tools(manager: McpManager) -> list[McpTool]:
    """The tools of every connected server, each name once (a later duplicate is dropped)."""
    seen: set[str] = set()
    out: list[McpTool] = []
    for server in manager.connected():
        for tool in server.tools:
            adapted = McpTool(manager, server.name, tool)
            if adapted.name not in seen:
                seen.add(adapted.name)
                out.append(adapted)
    return out
