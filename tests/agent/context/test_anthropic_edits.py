import json

import pytest
from anthropic.types.beta import (
    BetaClearThinking20251015EditParam,
    BetaClearToolUses20250919EditParam,
    BetaContextManagementConfigParam,
    BetaContextManagementResponse,
    BetaInputTokensClearAtLeastParam,
    BetaInputTokensTriggerParam,
    BetaThinkingTurnsParam,
    BetaToolUsesKeepParam,
)
from pydantic import TypeAdapter

from agent.context.policy import (
    ContextSettings,
    anthropic_context_management,
    context_edit_event,
)
from agent.events import ContextEdit, dump_event, parse_event
from agent.providers.catalogue import CONTEXT_MANAGEMENT_BETA
from tests.shared import FIXTURES

FIXTURE = FIXTURES / "anthropic-streams" / "context_management_response.txt"


def _check_against_sdk_types(body):
    """Each edit, checked against the SDK's own request types (TypedDicts): every key we send
    is one it knows, and each nested object validates (validating the whole config at once
    trips a pydantic-core panic on its recursive definitions)."""
    assert set(body) <= set(BetaContextManagementConfigParam.__annotations__)
    nested = {
        "trigger": BetaInputTokensTriggerParam,
        "clear_at_least": BetaInputTokensClearAtLeastParam,
    }
    for edit in body["edits"]:
        if edit["type"] == "clear_tool_uses_20250919":
            assert set(edit) <= set(BetaClearToolUses20250919EditParam.__annotations__), edit
            for key, typ in {**nested, "keep": BetaToolUsesKeepParam}.items():
                assert TypeAdapter(typ).validate_python(edit[key]) == edit[key]
                assert set(edit[key]) == set(typ.__annotations__)
        else:
            assert edit["type"] == "clear_thinking_20251015"
            assert set(edit) <= set(BetaClearThinking20251015EditParam.__annotations__), edit
            if edit["keep"] != "all":
                TypeAdapter(BetaThinkingTurnsParam).validate_python(edit["keep"])
                assert set(edit["keep"]) == set(BetaThinkingTurnsParam.__annotations__)


def test_body_without_thinking_is_one_tool_clearing_edit():
    body = anthropic_context_management(ContextSettings(), thinking=False)
    assert body == {
        "edits": [
            {
                "type": "clear_tool_uses_20250919",
                "trigger": {"type": "input_tokens", "value": 100_000},
                "keep": {"type": "tool_uses", "value": 3},
                "clear_at_least": {"type": "input_tokens", "value": 20_000},
                "exclude_tools": ["memory"],
                "clear_tool_inputs": False,
            }
        ]
    }
    _check_against_sdk_types(body)
    assert CONTEXT_MANAGEMENT_BETA == "context-management-2025-06-27"


def test_thinking_clearing_comes_first():
    settings = ContextSettings(
        clear_thinking_keep_turns=2,
        keep_tool_uses=5,
        exclude_tools=["memory", "grep"],
        clear_tool_inputs=True,
    )
    body = anthropic_context_management(settings, thinking=True)
    assert [e["type"] for e in body["edits"]] == [
        "clear_thinking_20251015",
        "clear_tool_uses_20250919",
    ]
    assert body["edits"][0] == {
        "type": "clear_thinking_20251015",
        "keep": {"type": "thinking_turns", "value": 2},
    }
    tools = body["edits"][1]
    assert tools["keep"] == {"type": "tool_uses", "value": 5}
    assert tools["exclude_tools"] == ["memory", "grep"] and tools["clear_tool_inputs"] is True
    _check_against_sdk_types(body)
    keep_all = anthropic_context_management(
        ContextSettings(clear_thinking_keep_turns="all"), thinking=True
    )
    assert keep_all["edits"][0]["keep"] == "all"
    _check_against_sdk_types(keep_all)


def test_trigger_follows_a_small_window_and_disabled_sends_nothing():
    body = anthropic_context_management(ContextSettings(), thinking=False, context_window=64_000)
    assert body["edits"][0]["trigger"] == {"type": "input_tokens", "value": 32_000}
    assert anthropic_context_management(ContextSettings(enabled=False), thinking=True) is None


def _applied_edits_from_fixture():
    for line in FIXTURE.read_text().splitlines():
        if line.startswith("data: "):
            data = json.loads(line[6:])
            if data["type"] == "message_delta":
                return data["context_management"]["applied_edits"]
    raise AssertionError("fixture has no message_delta")


def test_event_from_the_recorded_stream():
    applied = _applied_edits_from_fixture()
    # The SDK parses the same object, so our reading agrees with the service's schema.
    BetaContextManagementResponse.model_validate({"applied_edits": applied})
    event = context_edit_event(applied)
    assert event.source == "server"
    assert (event.cleared_tool_uses, event.cleared_input_tokens) == (2, 1500)
    assert event.applied_edits == applied
    again = parse_event(dump_event(event))
    assert isinstance(again, ContextEdit) and again.applied_edits == applied


def test_event_sums_thinking_and_tool_edits():
    event = context_edit_event(
        [
            {
                "type": "clear_thinking_20251015",
                "cleared_thinking_turns": 3,
                "cleared_input_tokens": 900,
            },
            {
                "type": "clear_tool_uses_20250919",
                "cleared_tool_uses": 4,
                "cleared_input_tokens": 20_100,
            },
        ]
    )
    assert event.cleared_tool_uses == 4 and event.cleared_input_tokens == 21_000
    with pytest.raises(TypeError, match="applied edit must be an object"):
        context_edit_event(["clear_tool_uses_20250919"])
