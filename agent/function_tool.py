"""Custom tools from typed Python functions: the schema comes from the signature via pydantic.

@tool
def word_count(path: str, min_length: int = 1) -> str:
    "Count the words in a file."
    ...

Agent(tools=[word_count])
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from tools.base import ToolContext, ToolResult, function_spec, json_schema, validation_message


class FunctionTool:
    """A Tool made from a function. Sync or async; return str, a JSON-able value or ToolResult."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        read_only: bool = False,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self._description = (description or inspect.getdoc(fn) or f"Call {self.name}.").strip()
        self.read_only = read_only
        self.input_model = _input_model(fn, self.name)

    def description(self) -> str:
        return self._description

    def anthropic_spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self._description,
            "input_schema": json_schema(self.input_model),
        }

    def openai_spec(self) -> dict[str, Any]:
        return function_spec(self.name, self._description, self.input_model)

    def is_read_only(self, args: dict[str, Any]) -> bool:
        return self.read_only

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            parsed = self.input_model.model_validate(args)
        except ValidationError as exc:
            return ToolResult(content=validation_message(self.name, exc), is_error=True)
        kwargs = {k: getattr(parsed, k) for k in type(parsed).model_fields}
        try:
            out = self.fn(**kwargs)
            if inspect.isawaitable(out):
                out = asyncio.run(_await(out))
        except Exception as exc:  # noqa: BLE001 - the user's function failing is a tool error
            return ToolResult(
                content=f"{self.name} raised {type(exc).__name__}: {exc}", is_error=True
            )
        if isinstance(out, ToolResult):
            return out
        if isinstance(out, str):
            return ToolResult(content=out)
        try:
            return ToolResult(content=json.dumps(out, default=str))
        except (TypeError, ValueError):
            return ToolResult(content=str(out))


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _input_model(fn: Callable[..., Any], name: str) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    hints = inspect.get_annotations(fn, eval_str=True)
    for pname, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{name}: *args/**kwargs cannot become tool parameters")
        annotation = hints.get(pname, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (annotation, default)
    model_name = "".join(part.capitalize() for part in name.split("_")) + "Input"
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    read_only: bool = False,
):
    """Decorator: turn a typed function into a tool the agent can offer the model."""

    def wrap(f: Callable[..., Any]) -> FunctionTool:
        return FunctionTool(f, name=name, description=description, read_only=read_only)

    return wrap(fn) if fn is not None else wrap
