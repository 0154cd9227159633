"""Hook callbacks registered by a Claude Agent SDK program (`initialize.hooks`), run where the
shell hooks run and read the same way.

The SDK registers `{EVENT: [{"matcher": ..., "hookCallbackIds": [...], "timeout": s}]}`; when the
event happens Godwit sends one `hook_callback` control request per matching callback, with the
same input a shell hook gets on stdin, and reads the answer as a shell hook's JSON stdout. A
callback that fails or does not answer in time is reported and does not stop the session.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agent.command_hooks.config import DEFAULT_TIMEOUT_S, HookMatcher
from agent.command_hooks.runner import HookResult, apply_json
from agent.compat.control import ControlChannel, ControlError


class SdkHooks:
    """The SDK's hook callbacks; the same `has` / `run` as CommandHooks."""

    def __init__(
        self,
        channel: ControlChannel,
        config: dict[str, Any] | None,
        *,
        session_id: str = "",
        cwd: str = "",
        transcript_path: str = "",
    ) -> None:
        self.channel = channel
        self.session_id, self.cwd, self.transcript_path = session_id, cwd, transcript_path
        self.permission_mode = "default"
        self.matchers: dict[str, list[tuple[HookMatcher, list[str], float]]] = {}
        for event, entries in (config or {}).items():
            for entry in entries or []:
                if not isinstance(entry, dict):
                    continue
                ids = [str(i) for i in entry.get("hookCallbackIds") or []]
                matcher = HookMatcher(matcher=entry.get("matcher") or "")
                timeout = float(entry.get("timeout") or DEFAULT_TIMEOUT_S)
                self.matchers.setdefault(event, []).append((matcher, ids, timeout))

    def has(self, event: str) -> bool:
        return any(ids for _, ids, _ in self.matchers.get(event, []))

    async def run(
        self, event: str, fields: dict[str, Any], *, match: tuple[str, ...] = ()
    ) -> HookResult:
        calls: list[tuple[str, float]] = []
        for matcher, ids, timeout in self.matchers.get(event, []):
            if not match or matcher.matches(*match):
                calls.extend((i, timeout) for i in ids)
        result = HookResult()
        if not calls:
            return result
        payload = {
            "session_id": self.session_id,
            "transcript_path": self.transcript_path,
            "cwd": self.cwd,
            "permission_mode": self.permission_mode,
            "hook_event_name": event,
            **fields,
        }
        answers = await asyncio.gather(*(self._call(cid, t, payload) for cid, t in calls))
        for callback_id, answer in zip((c for c, _ in calls), answers):
            if isinstance(answer, str):
                result.errors.append(f"{event} hook callback {callback_id} failed: {answer}")
            else:
                apply_json(event, answer, result)
        result.ran = len(calls)
        return result

    async def _call(
        self, callback_id: str, timeout: float, payload: dict[str, Any]
    ) -> dict[str, Any] | str:
        try:
            return await self.channel.request(
                "hook_callback",
                {
                    "callback_id": callback_id,
                    "input": payload,
                    "tool_use_id": payload.get("tool_use_id"),
                },
                timeout=timeout,
            )
        except ControlError as exc:
            return str(exc)
