"""Run one task with the SDK and print the result, usage and checkpoints.

    python examples/run_task.py [REPO] [PROMPT]

With ANTHROPIC_API_KEY set it uses Claude (the newest Sonnet, or GODWIT_MODEL);
without a key it replays a short scripted session, so the example runs offline.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from pathlib import Path

from agent import Agent
from agent.providers.scripted import ScriptedProvider


def main() -> int:
    repo = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="godwit-example-"))
    )
    repo.mkdir(parents=True, exist_ok=True)
    prompt = (
        sys.argv[2] if len(sys.argv) > 2 else "Create hello.py that prints 'hello', then run it."
    )
    provider = None
    if not os.environ.get("ANTHROPIC_API_KEY") and not os.environ.get("GODWIT_MODEL"):
        provider = ScriptedProvider(
            [
                {
                    "text": "Creating the file.",
                    "tool_calls": [
                        {
                            "name": "str_replace_based_edit_tool",
                            "input": {
                                "command": "create",
                                "path": "hello.py",
                                "file_text": "print('hello')\n",
                            },
                        }
                    ],
                },
                {
                    "text": "Running it.",
                    "tool_calls": [{"name": "bash", "input": {"command": "python hello.py"}}],
                },
                {"text": "hello.py prints 'hello'."},
            ]
        )
    agent = Agent(
        cwd=repo,
        model=os.environ.get("GODWIT_MODEL"),
        provider=provider,
        permission_mode="acceptEdits",
        settings={"permissions": {"allow": ["bash(python hello.py)"]}},
    )
    with agent:
        result = agent.run(prompt)
        print(f"result: {result.result}")
        print(
            f"stop: {result.stop_reason}, turns: {result.num_turns}, usage: {result.usage}, "
            f"cost: ${result.cost_usd:.4f}"
        )
        for cp in agent.checkpoints():
            print(f"checkpoint {cp['id']} turn {cp['turn']}: {cp['label'][:50]}")
        # A session belongs to the folder it ran in: the hint works from anywhere.
        print(
            f"session: {result.session_id} (resume with "
            f"`cd {shlex.quote(str(repo))} && godwit --resume {result.session_id}`)"
        )
    return 1 if result.is_error else 0


if __name__ == "__main__":
    sys.exit(main())
