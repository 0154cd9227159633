"""Shell hooks from the settings files, as Claude Code runs them (the `hooks` key): events,
matchers, JSON on stdin, answers by exit code or JSON on stdout. See runner for the wire format."""

from agent.command_hooks.config import EVENTS, HooksConfig
from agent.command_hooks.names import claude_name, from_hook, hook_input
from agent.command_hooks.runner import CommandHooks, HookResult, merge

__all__ = [
    "EVENTS",
    "CommandHooks",
    "HookResult",
    "HooksConfig",
    "claude_name",
    "from_hook",
    "hook_input",
    "merge",
]
