"""DeepSeek-V3.2's chat format: OpenAI-style messages -> prompt text, and completions -> messages.

No torch here: the agent renders prompts and parses completions without loading the model.

Format (thinking mode): `BOS system [tools block] <｜User｜>u<｜Assistant｜><think>reasoning</think>
answer [\\n\\n DSML function_calls block]<｜end▁of▁sentence｜>`, tool output as
`\\n\\n<function_results>\\n<result>...</result>\\n</function_results>\\n\\n<think>`. Reasoning of
assistant turns before the last user message is dropped: those turns open with `</think>` instead.
In non-thinking mode every assistant turn opens with `</think>`.
"""

from __future__ import annotations

import json
from typing import Any

from model.errors import EncodingError
from model.parsing import (
    ASSISTANT,
    BOS,
    CALLS_END,
    CALLS_START,
    DSML,
    EOS,
    THINK_END,
    THINK_START,
    USER,
    StreamParser,
    parse_completion,
)

__all__ = ["BOS", "EOS", "StreamParser", "encode_messages", "parse_completion", "render_tool_calls"]

_TOOLS_BLOCK = """## Tools

You have access to a set of tools you can use to answer the user's question.
You can invoke functions by writing a "{calls_start}" block like the following as part of your reply to the user:
{calls_start}
<{dsml}invoke name="$FUNCTION_NAME">
<{dsml}parameter name="$PARAMETER_NAME" string="true|false">$PARAMETER_VALUE</{dsml}parameter>
...
</{dsml}invoke>
<{dsml}invoke name="$FUNCTION_NAME2">
...
</{dsml}invoke>
{calls_end}

String and scalar parameters should be specified as is without any escaping or quotes, while lists and objects should use JSON format. The "string" attribute should be set to "true" for string type parameters and "false" for other types (numbers, booleans, arrays, objects).

If the thinking_mode is enabled, then after function results you should strongly consider outputting a thinking block. Here is an example:

{calls_start}
...
{calls_end}

<function_results>
...
</function_results>

{think_start}...thinking about results{think_end}

Here are the functions available in JSONSchema format:
<functions>
{schemas}
</functions>
"""


def encode_messages(
    messages: list[dict[str, Any]],
    thinking: bool = True,
    drop_thinking: bool = True,
    add_bos: bool = True,
) -> str:
    """Render a conversation as DeepSeek-V3.2 prompt text.

    `messages` are OpenAI Chat Completions dicts (system / user / assistant with `content`,
    `reasoning_content`, `tool_calls` / tool with `content`); tools ride on the system message
    (`messages[0]["tools"]`, OpenAI function-tool format). When the conversation ends with a user or
    tool message, the text ends with the opening of the next assistant turn (generation prompt).
    """
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    parts = [BOS] if add_bos else []
    for i, msg in enumerate(messages):
        role = msg.get("role")
        # Turns after the last user message keep their reasoning (the current, unfinished task).
        keep = thinking and (not drop_thinking or i >= last_user)
        opener = THINK_START if keep else THINK_END
        if role in ("system", "developer"):
            parts.append(_text(msg))
            if msg.get("tools"):
                parts.append("\n\n" + render_tools(msg["tools"]))
        elif role == "user":
            parts.append(f"{USER}{_text(msg)}{ASSISTANT}{opener}")
        elif role == "assistant":
            parts.append(_render_assistant(msg, keep))
        elif role == "tool":
            first = i == 0 or messages[i - 1].get("role") != "tool"
            last = i + 1 == len(messages) or messages[i + 1].get("role") != "tool"
            parts.append(
                ("\n\n<function_results>" if first else "") + f"\n<result>{_text(msg)}</result>"
            )
            if last:
                parts.append(f"\n</function_results>\n\n{opener}")
        else:
            raise EncodingError(f"message {i} has unknown role {role!r}")
    return "".join(parts)


def render_tools(tools: list[dict[str, Any]]) -> str:
    """The system prompt's tools section for OpenAI-format function tools."""
    schemas = []
    for tool in tools:
        spec = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(spec, dict) or "name" not in spec:
            raise EncodingError(f"tool {tool!r} is not an OpenAI function tool (no function.name)")
        schemas.append(json.dumps(spec, ensure_ascii=False))
    return _TOOLS_BLOCK.format(
        calls_start=CALLS_START,
        calls_end=CALLS_END,
        dsml=DSML,
        think_start=THINK_START,
        think_end=THINK_END,
        schemas="\n".join(schemas),
    )


def render_tool_calls(tool_calls: list[dict[str, Any]]) -> str:
    """A DSML function_calls block for OpenAI-format tool calls."""
    invokes = []
    for call in tool_calls:
        fn = call.get("function", call)
        name = fn.get("name")
        if not name:
            raise EncodingError(f"tool call {call!r} has no function name")
        args = fn.get("arguments") or {}
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError as exc:
                raise EncodingError(f"arguments of tool call {name!r} are not JSON: {exc}") from exc
        if not isinstance(args, dict):
            raise EncodingError(f"arguments of tool call {name!r} must be a JSON object")
        params = [_render_parameter(k, v) for k, v in args.items()]
        invokes.append(f'<{DSML}invoke name="{name}">\n' + "\n".join(params) + f"\n</{DSML}invoke>")
    return f"{CALLS_START}\n" + "\n".join(invokes) + f"\n{CALLS_END}"


def _render_parameter(name: str, value: Any) -> str:
    if isinstance(value, str):
        return f'<{DSML}parameter name="{name}" string="true">{value}</{DSML}parameter>'
    return f'<{DSML}parameter name="{name}" string="false">{json.dumps(value, ensure_ascii=False)}</{DSML}parameter>'


def _render_assistant(msg: dict[str, Any], with_reasoning: bool) -> str:
    out = ""
    if with_reasoning:
        out += (msg.get("reasoning_content") or "") + THINK_END
    out += _text(msg)
    if msg.get("tool_calls"):
        out += "\n\n" + render_tool_calls(msg["tool_calls"])
    return out + EOS


def _text(msg: dict[str, Any]) -> str:
    """A message's content as text (OpenAI content may be a list of parts)."""
    content = msg.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    raise EncodingError(f"{msg.get('role')} message content must be a string or a list of parts")
