"""The session: its append-only event log and the index of sessions (log.py), the conversation
rebuilt from the log (conversation.py), opening a new, resumed or forked session (open.py), and
checkpoints with their rewind (checkpointer.py, rewind.py)."""
