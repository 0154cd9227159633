"""Test doubles that speak real protocols (the fake LLM HTTP server)."""
