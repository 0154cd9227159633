"""Exact row-wise top-k by radix select (used by the lightning indexer)."""

from .kernel import radix_topk

__all__ = ["radix_topk"]
