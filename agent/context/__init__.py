"""Context management: the clearing policy (policy.py), the manager that applies it to a live
session (manager.py), compaction (compaction.py) and token accounting (tokens.py)."""
