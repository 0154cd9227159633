"""Sparse MLA attention over top-k selected latent rows (prefill and paged decode)."""

from .kernel import sparse_mla, sparse_mla_decode

__all__ = ["sparse_mla", "sparse_mla_decode"]
