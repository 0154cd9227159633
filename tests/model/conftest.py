"""Shared tiny checkpoints for the model tests (written once per session into tmp folders)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from model.tiny import write_tiny_checkpoint


@pytest.fixture(scope="session", autouse=True)
def _godwit_home(tmp_path_factory):
    os.environ["GODWIT_HOME"] = str(tmp_path_factory.mktemp("godwit_home"))


def with_config(src: Path, dst: Path, **changes) -> Path:
    """Copy a checkpoint folder and change fields of its config.json."""
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg.update(changes)
    (dst / "config.json").write_text(json.dumps(cfg, indent=2))
    return dst


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """Two layers (one dense, one MoE), index_topk 8, bf16 weights in two shards."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", layers=2, seed=0)


@pytest.fixture(scope="session")
def tiny_dense_dir(tiny_dir, tmp_path_factory) -> Path:
    """The same weights with index_topk above any test length: DSA reduces to dense causal attention."""
    return with_config(tiny_dir, tmp_path_factory.mktemp("dense") / "ckpt", index_topk=4096)


@pytest.fixture(scope="session")
def fp8_dir(tmp_path_factory) -> Path:
    """The same random weights as `tiny_dir` (same seed) stored as FP8 with 32x32 block scales."""
    return write_tiny_checkpoint(
        tmp_path_factory.mktemp("tiny_fp8") / "ckpt", layers=2, seed=0, fp8=True
    )


@pytest.fixture(scope="session")
def reference(tiny_dir):
    """transformers' DeepseekV32ForCausalLM on the same folder, float32, offline."""
    transformers = pytest.importorskip("transformers")
    return transformers.DeepseekV32ForCausalLM.from_pretrained(
        str(tiny_dir), dtype=torch.float32, local_files_only=True
    ).eval()


def rel_err(a, b) -> float:
    """max |a - b| / max |b|."""
    return float((a - b).abs().max() / b.abs().max())
