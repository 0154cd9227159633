"""Claude Code compatibility: its stream-json messages and its stdin/stdout control protocol, so
that programs written for the Claude Agent SDK drive Godwit unchanged (README.md has the wire
shapes)."""
