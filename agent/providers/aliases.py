"""Claude Code's model aliases and the default model, read from the installed SDK's model list.

`sonnet`, `opus` and `haiku` (bare or as `anthropic:sonnet`) mean the newest model of that family
that the installed `anthropic` SDK lists in `anthropic.types.Model`; the default model is the
newest Sonnet. So a newer SDK brings a newer default without a change here, and a model the API
retired (it leaves the SDK's list) stops being the default by itself. Reading the list imports the
SDK, which only happens when an Anthropic provider is being built anyway.
"""

from __future__ import annotations

import re
import typing

from agent.providers.catalogue import DEFAULT_CLAUDE_MODEL

FAMILIES = ("sonnet", "opus", "haiku")
# Used only when the SDK's list names no model of the family (an old or unusual SDK).
FALLBACK = {"sonnet": "claude-sonnet-5-5", "opus": "claude-opus-5-5", "haiku": "claude-haiku-5-5"}

_ID = re.compile(
    r"^claude-(?P<family>[a-z]+)-(?P<major>\d+)(?:-(?P<minor>\d{1,2}))?"
    r"(?:-(?P<date>\d{8}))?$"
)


def sdk_model_ids() -> list[str]:
    """Every id in the installed SDK's `anthropic.types.Model` literals (empty if none)."""
    try:
        from anthropic.types import Model
    except ImportError:
        return []
    ids: list[str] = []
    stack = [Model]
    while stack:
        tp = stack.pop()
        if typing.get_origin(tp) is typing.Literal:
            ids.extend(a for a in typing.get_args(tp) if isinstance(a, str))
        else:
            stack.extend(typing.get_args(tp))
    return ids


def newest(family: str, ids: list[str]) -> str | None:
    """The newest id of `family` in `ids` by version; an undated alias beats its dated
    snapshot (`claude-haiku-4-5` over `claude-haiku-4-5-20251001`)."""
    best: tuple[tuple[int, int, int], str] | None = None
    for model_id in ids:
        match = _ID.match(model_id)
        if not match or match["family"] != family:
            continue
        key = (int(match["major"]), int(match["minor"] or 0), 0 if match["date"] else 1)
        if best is None or key > best[0]:
            best = (key, model_id)
    return best[1] if best else None


def resolve(model: str, ids: list[str] | None = None) -> str:
    """`sonnet` / `opus` / `haiku` -> the newest id of the family; anything else unchanged."""
    name = model.strip()
    if name.lower() not in FAMILIES:
        return name
    family = name.lower()
    return newest(family, sdk_model_ids() if ids is None else ids) or FALLBACK[family]


def default_model() -> str:
    """The default Claude model: the newest Sonnet the installed SDK lists."""
    return resolve(DEFAULT_CLAUDE_MODEL)
