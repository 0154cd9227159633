"""Lightning indexer with top-k: causal prefill and paged decode."""

from .kernel import lightning_indexer, lightning_indexer_paged

__all__ = ["lightning_indexer", "lightning_indexer_paged"]
