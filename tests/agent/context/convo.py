"""Small builders of conversations for the context tests."""

from __future__ import annotations

from agent.messages import Message, TextBlock, ToolResultBlock, ToolUseBlock


def step(i: int, name: str = "bash", size: int = 4000, **input_: object) -> list[Message]:
    """One agent step: an assistant tool call and the user message holding its result."""
    args = dict(input_) or {"command": f"cat file_{i}.py"}
    use = ToolUseBlock(id=f"toolu_{i:03d}", name=name, input=args)
    body = "".join(f"line {i}.{n}: value = compute({n}, {i})\n" for n in range(size // 36 + 1))
    return [
        Message(role="assistant", content=[TextBlock(text=f"Step {i}."), use]),
        Message(role="user", content=[ToolResultBlock(tool_use_id=use.id, content=body[:size])]),
    ]


def session(
    steps: int, *, size: int = 4000, names: dict[int, str] | None = None, turn_every: int = 0
) -> list[Message]:
    """A user prompt then `steps` tool steps; a new user turn every `turn_every` steps."""
    names = names or {}
    out = [Message.user("Fix the failing tests in the repo.")]
    for i in range(steps):
        if turn_every and i and i % turn_every == 0:
            out.append(Message(role="assistant", content=[TextBlock(text=f"Done part {i}.")]))
            out.append(Message.user(f"Now part {i}."))
        out.extend(step(i, names.get(i, "bash"), size))
    return out


def result_contents(messages: list[Message]) -> dict[str, str]:
    return {
        b.tool_use_id: b.content
        for m in messages
        for b in m.content
        if isinstance(b, ToolResultBlock)
    }
