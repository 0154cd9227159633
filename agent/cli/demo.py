"""`godwit demo`: a scripted session, offline, on a tiny project with a bug.

Everything is real except the model: real tools, real bash, real checkpoints in the shadow git
repository, a real session log. The project is created under GODWIT_HOME/demo/.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from agent.session.index import godwit_home

CALC = '''def mean(values):
    """The arithmetic mean of a non-empty list."""
    return sum(values) / (len(values) - 1)
'''

TESTS = """from calc import mean

assert mean([2, 4, 6]) == 4, mean([2, 4, 6])
assert mean([5]) == 5
print("all tests passed")
"""

SCRIPT = [
    {
        "text": "I'll start by looking at the project.",
        "tool_calls": [{"name": "glob", "input": {"pattern": "**/*.py"}}],
    },
    {
        "text": "Let me run the tests to see what fails.",
        "tool_calls": [{"name": "bash", "input": {"command": "python test_calc.py"}}],
    },
    {
        "thinking": "The mean divides by len - 1; a mean divides by the count.",
        "text": "The test fails; let me read `calc.py`.",
        "tool_calls": [
            {"name": "str_replace_based_edit_tool", "input": {"command": "view", "path": "calc.py"}}
        ],
    },
    {
        "text": "`mean` divides by `len(values) - 1`. Fixing it:",
        "tool_calls": [
            {
                "name": "str_replace_based_edit_tool",
                "input": {
                    "command": "str_replace",
                    "path": "calc.py",
                    "old_str": "/ (len(values) - 1)",
                    "new_str": "/ len(values)",
                },
            }
        ],
    },
    {
        "text": "Running the tests again.",
        "tool_calls": [{"name": "bash", "input": {"command": "python test_calc.py"}}],
    },
    {
        "text": "Fixed: `mean` divided by `len(values) - 1`; it now divides by `len(values)` and "
        "the tests pass."
    },
]


def make_project() -> Path:
    root = godwit_home() / "demo" / datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    root.mkdir(parents=True)
    (root / "calc.py").write_text(CALC)
    (root / "test_calc.py").write_text(TESTS)
    (root / "AGENTS.md").write_text("Run `python test_calc.py` to test.\n")
    return root


async def run_demo(output_format: str = "text", *, delay: float = 0.02) -> int:
    from agent.cli.headless import run_headless
    from agent.providers.scripted import ScriptedProvider
    from agent.sdk import Agent

    root = make_project()
    provider = ScriptedProvider(
        [{**turn, "delay": delay} for turn in SCRIPT], model="scripted:demo"
    )
    agent = Agent(
        cwd=root,
        provider=provider,
        permission_mode="acceptEdits",
        settings={
            "model": "scripted:demo",
            "permissions": {"allow": ["bash(python test_calc.py)"]},
        },
    )
    try:
        code = await run_headless(
            agent, "The tests fail. Find the bug and fix it.", output_format, verbose=True
        )
        if output_format == "text":
            rows = agent.checkpoints()
            out = sys.stdout
            out.write(f"\nProject: {root}\nSession: {agent.session_id}\n")
            out.write(f"Checkpoints ({len(rows)}):\n")
            for row in rows:
                out.write(f"  {row['id']}  turn {row['turn']}  {row['label'][:60]}\n")
            if rows:
                out.write(
                    f"\nTry: cd {root} && godwit diff {rows[0]['id']}\n"
                    f"     godwit rewind {rows[0]['id']} --code   (then: godwit undo-rewind)\n"
                )
        return code
    finally:
        agent.close()
