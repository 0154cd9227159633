"""Godwit's events as Claude Code's `--output-format stream-json` messages.

One `ClaudeCodeStream` per session turns each event into zero or more JSON-able dicts in the
shapes the Claude Agent SDK parses (README.md beside this file lists them with every field):
`system/init` first, `user` for replayed prompts and for tool results, `assistant` for each
complete model reply, `stream_event` (Anthropic stream events) for deltas when partial messages
are asked for, `result` at the end of each prompt, and `system` notices for MCP failures and
hook errors. The stream keeps what `result` needs (usage, cost, permission denials, errors) and
the uuid of each replayed prompt (rewind_files names a prompt by it).
"""

from __future__ import annotations

import time
import uuid as uuidlib
from typing import Any

PROTOCOL_VERSION = "2.1.0"  # the Claude Code release whose stream-json shapes these follow


def _uuid() -> str:
    return str(uuidlib.uuid4())


def _block(block: Any) -> dict[str, Any] | None:
    """A Godwit content block as the Messages API (and so Claude Code) writes it."""
    data = block.model_dump(mode="json") if hasattr(block, "model_dump") else dict(block)
    kind = data.get("type")
    if kind == "thinking":
        return {
            "type": "thinking",
            "thinking": data.get("thinking", ""),
            "signature": data.get("signature") or "",
        }
    if kind == "tool_use":
        return {
            "type": "tool_use",
            "id": data["id"],
            "name": data["name"],
            "input": data.get("input") or {},
        }
    if kind == "text":
        return {"type": "text", "text": data.get("text", "")}
    if kind == "tool_result":
        return {
            "type": "tool_result",
            "tool_use_id": data["tool_use_id"],
            "content": data.get("content", ""),
            "is_error": bool(data.get("is_error")),
        }
    return None  # redacted thinking and the like: nothing an SDK consumer reads


def _subtype(reason: str) -> str:
    return {
        "end_turn": "success",
        "stop_sequence": "success",
        "max_turns": "error_max_turns",
        "tool_use": "success",
        "refusal": "success",
        "max_tokens": "success",
    }.get(reason, "error_during_execution")


class ClaudeCodeStream:
    """Translates one session's events; `feed(event)` returns the lines to write."""

    def __init__(
        self,
        session_id: str,
        *,
        partial: bool = False,
        replay_user: bool = False,
        session_state: bool = False,
    ) -> None:
        self.session_id = session_id
        self.partial = partial
        self.replay_user = replay_user
        self.session_state = session_state
        self.prompt_uuids: dict[str, int] = {}  # uuid of a replayed prompt -> its turn
        self._reset_turn()
        self._block_open: str | None = None
        self._block_index = -1
        self._message_open = False

    def _reset_turn(self) -> None:
        self._t0 = time.monotonic()
        self._api_ms = 0
        self._usage = {
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        }
        self._models: dict[str, dict[str, float]] = {}
        self._cost = 0.0
        self._denials: list[dict[str, Any]] = []
        self._errors: list[str] = []
        self._inputs: dict[str, dict[str, Any]] = {}
        self._last_usage: dict[str, int] | None = None

    def _base(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"type": kind, **fields, "session_id": self.session_id, "uuid": _uuid()}

    # -- lines not tied to an event --------------------------------------------------------

    def init(
        self,
        *,
        cwd: str,
        model: str,
        tools: list[str],
        permission_mode: str,
        mcp_servers: list[dict[str, str]] = (),
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The `system/init` line: first line of the stream."""
        return self._base(
            "system",
            subtype="init",
            cwd=cwd,
            tools=list(tools),
            mcp_servers=list(mcp_servers),
            model=model,
            permissionMode=permission_mode,
            slash_commands=[],
            apiKeySource="none",
            claude_code_version=PROTOCOL_VERSION,
            output_style="default",
            agents=[],
            skills=[],
            plugins=[],
            **(extra or {}),
        )

    def user_prompt(self, text: str, turn: int) -> list[dict[str, Any]]:
        """A prompt read from stdin, echoed when --replay-user-messages asks for it; its uuid
        is remembered so that rewind_files can name the prompt's checkpoint."""
        line = self._base(
            "user", message={"role": "user", "content": text}, parent_tool_use_id=None
        )
        self.prompt_uuids[line["uuid"]] = turn
        return [line] if self.replay_user else []

    def state(self, state: str) -> list[dict[str, Any]]:
        """`session_state_changed` (running / idle), for an SDK that asked for it by env."""
        if not self.session_state:
            return []
        return [
            self._base("system", subtype="session_state_changed", state=state, sdk_host_only=True)
        ]

    def notice(self, subtype: str, **fields: Any) -> dict[str, Any]:
        """A `system` line of Godwit's own (mcp_server_failed, hook_error, ...)."""
        return self._base("system", subtype=subtype, **fields)

    # -- events ----------------------------------------------------------------------------

    def feed(self, event: Any) -> list[dict[str, Any]]:
        kind = getattr(event, "type", None)
        handler = getattr(self, f"_on_{kind}", None)
        return handler(event) if handler is not None else []

    def _on_user(self, event: Any) -> list[dict[str, Any]]:
        self._reset_turn()
        return []

    def _on_text_delta(self, event: Any) -> list[dict[str, Any]]:
        return self._delta("text", {"type": "text_delta", "text": event.text})

    def _on_thinking_delta(self, event: Any) -> list[dict[str, Any]]:
        return self._delta("thinking", {"type": "thinking_delta", "thinking": event.text})

    def _on_retry(self, event: Any) -> list[dict[str, Any]]:
        out = self._close_message(None)
        return out

    def _delta(self, block: str, delta: dict[str, Any]) -> list[dict[str, Any]]:
        if not self.partial:
            return []
        out: list[dict[str, Any]] = []
        if not self._message_open:
            self._message_open = True
            self._block_index = -1
            out.append(
                self._stream(
                    {
                        "type": "message_start",
                        "message": {
                            "id": f"msg_{uuidlib.uuid4().hex[:24]}",
                            "type": "message",
                            "role": "assistant",
                            "content": [],
                            "model": "",
                            "stop_reason": None,
                            "stop_sequence": None,
                            "usage": {"input_tokens": 0, "output_tokens": 0},
                        },
                    }
                )
            )
        if self._block_open != block:
            out.extend(self._close_block())
            self._block_index += 1
            self._block_open = block
            start = (
                {"type": "text", "text": ""}
                if block == "text"
                else {"type": "thinking", "thinking": "", "signature": ""}
            )
            out.append(
                self._stream(
                    {
                        "type": "content_block_start",
                        "index": self._block_index,
                        "content_block": start,
                    }
                )
            )
        out.append(
            self._stream(
                {"type": "content_block_delta", "index": self._block_index, "delta": delta}
            )
        )
        return out

    def _close_block(self) -> list[dict[str, Any]]:
        if self._block_open is None:
            return []
        self._block_open = None
        return [self._stream({"type": "content_block_stop", "index": self._block_index})]

    def _close_message(self, stop_reason: str | None) -> list[dict[str, Any]]:
        if not (self.partial and self._message_open):
            return []
        out = self._close_block()
        self._message_open = False
        out.append(
            self._stream(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": 0},
                }
            )
        )
        out.append(self._stream({"type": "message_stop"}))
        return out

    def _stream(self, event: dict[str, Any]) -> dict[str, Any]:
        return self._base("stream_event", event=event, parent_tool_use_id=None)

    def _on_assistant(self, event: Any) -> list[dict[str, Any]]:
        out = self._close_message(event.stop_reason)
        content = [b for b in (_block(x) for x in event.message.content) if b is not None]
        for block in content:
            if block["type"] == "tool_use":
                self._inputs[block["id"]] = block["input"]
        message = {
            "id": f"msg_{uuidlib.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": event.model,
            "content": content,
            "stop_reason": event.stop_reason,
            "stop_sequence": None,
            "usage": dict(self._last_usage or {"input_tokens": 0, "output_tokens": 0}),
        }
        out.append(self._base("assistant", message=message, parent_tool_use_id=None))
        return out

    def _on_tool_result(self, event: Any) -> list[dict[str, Any]]:
        block = {
            "type": "tool_result",
            "tool_use_id": event.tool_use_id,
            "content": event.content,
            "is_error": bool(event.is_error),
        }
        return [
            self._base(
                "user",
                message={"role": "user", "content": [block]},
                parent_tool_use_id=None,
                tool_use_result=event.content,
            )
        ]

    def _on_permission(self, event: Any) -> list[dict[str, Any]]:
        if event.decision == "deny":
            self._denials.append(
                {
                    "tool_name": event.tool,
                    "tool_use_id": event.tool_use_id,
                    "tool_input": self._inputs.get(event.tool_use_id, {}),
                }
            )
        return []

    def _on_usage(self, event: Any) -> list[dict[str, Any]]:
        last = {k: int(getattr(event, k, 0) or 0) for k in self._usage}
        self._last_usage = last
        for key, value in last.items():
            self._usage[key] += value
        self._cost += float(event.cost_usd or 0.0)
        model = self._models.setdefault(
            event.model,
            {
                "inputTokens": 0,
                "outputTokens": 0,
                "cacheReadInputTokens": 0,
                "cacheCreationInputTokens": 0,
                "webSearchRequests": 0,
                "costUSD": 0.0,
            },
        )
        model["inputTokens"] += last["input_tokens"]
        model["outputTokens"] += last["output_tokens"]
        model["cacheReadInputTokens"] += last["cache_read_input_tokens"]
        model["cacheCreationInputTokens"] += last["cache_creation_input_tokens"]
        model["costUSD"] = round(model["costUSD"] + float(event.cost_usd or 0.0), 6)
        return []

    def _on_error(self, event: Any) -> list[dict[str, Any]]:
        self._errors.append(event.message)
        return []

    def _on_turn_end(self, event: Any) -> list[dict[str, Any]]:
        out = self._close_message(None)
        subtype = _subtype(event.reason)
        is_error = subtype != "success" or event.reason == "refusal"
        out.append(
            self._base(
                "result",
                subtype=subtype,
                is_error=is_error,
                duration_ms=int((time.monotonic() - self._t0) * 1000),
                duration_api_ms=self._api_ms,
                num_turns=event.turns,
                result=event.result,
                stop_reason=event.reason,
                total_cost_usd=round(self._cost, 6),
                usage=dict(self._usage),
                modelUsage=self._models,
                permission_denials=list(self._denials),
                errors=list(self._errors) or ([event.reason] if is_error else []),
            )
        )
        return out
