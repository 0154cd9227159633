from __future__ import annotations

from pathlib import Path

import pytest

from tools.base import ToolContext


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The work tree root (a folder inside tmp_path, so tmp_path itself is 'outside')."""
    root = tmp_path / "work"
    root.mkdir()
    return root


@pytest.fixture
def ctx(tree: Path) -> ToolContext:
    return ToolContext(cwd=tree)
