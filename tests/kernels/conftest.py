"""Kernel tests run on the GPU when there is one, else on Triton's CPU interpreter.

TRITON_INTERPRET must be set before Triton launches anything, so it is set here, before
the tests import `kernels`, and only when no CUDA device is present.
"""

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(autouse=True)
def _godwit_home(tmp_path, monkeypatch):
    # Nothing here writes files, but every Godwit test runs with a private GODWIT_HOME.
    monkeypatch.setenv("GODWIT_HOME", str(tmp_path / "godwit-home"))


@pytest.fixture
def device() -> str:
    return DEVICE
