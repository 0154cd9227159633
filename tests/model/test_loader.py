"""Loader: released key names, MTP skipped with a note, and clear errors naming the bad tensor."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import model
from model.errors import CheckpointError, ConfigError
from model.loader import check_checkpoint


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit_shard(folder: Path, edit, containing: str | None = None) -> None:
    """Rewrite one shard (the first, or the one holding `containing`) through `edit(dict of
    tensors)` and keep the index consistent."""
    index_path = folder / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    shard = (
        index["weight_map"][containing] if containing else min(set(index["weight_map"].values()))
    )
    with safe_open(str(folder / shard), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not iterable
    edit(tensors)
    save_file(tensors, str(folder / shard))
    index["weight_map"] = {k: v for k, v in index["weight_map"].items() if v != shard}
    index["weight_map"].update({k: shard for k in tensors})
    index_path.write_text(json.dumps(index))


def test_released_key_names(tiny_dir):
    index = json.loads((tiny_dir / "model.safetensors.index.json").read_text())["weight_map"]
    for name in [
        "model.layers.0.self_attn.q_a_proj.weight",
        "model.layers.0.mlp.down_proj.weight",
        "model.layers.1.self_attn.indexer.k_norm.bias",
        "model.layers.1.mlp.experts.7.gate_proj.weight",
        "model.layers.1.mlp.gate.e_score_correction_bias",
        "model.layers.1.mlp.shared_experts.up_proj.weight",
        "model.layers.2.eh_proj.weight",
        "model.layers.2.shared_head.head.weight",
        "lm_head.weight",
    ]:
        assert name in index, name
    assert len(set(index.values())) == 2


def test_mtp_layer_is_skipped_with_a_note_once(tiny_dir, tmp_path, caplog):
    folder = tmp_path / "ckpt"  # a folder this process has not warned about yet
    shutil.copytree(tiny_dir, folder)
    with caplog.at_level(logging.WARNING, logger="model.loader"):
        check_checkpoint(folder)
        m = model.load(folder, dtype=torch.float32)
    assert caplog.text.count("multi-token-prediction") == 1 and "[2]" in caplog.text
    assert len(m.model.layers) == 2
    names = dict(m.named_parameters())
    assert not any(p.is_meta for p in names.values())
    assert names["model.layers.1.mlp.gate.weight"].dtype == torch.float32
    assert names["model.layers.0.self_attn.indexer.weights_proj.weight"].dtype == torch.float32


def test_missing_tensor_is_named(tiny_dir, tmp_path):
    folder = _copy(tiny_dir, tmp_path / "ckpt")
    _edit_shard(folder, lambda t: t.pop("model.layers.0.self_attn.q_a_proj.weight"))
    with pytest.raises(
        CheckpointError, match=r"missing tensor\(s\): model\.layers\.0\.self_attn\.q_a_proj\.weight"
    ):
        model.load(folder, dtype=torch.float32)


def test_unexpected_tensor_is_named(tiny_dir, tmp_path):
    folder = _copy(tiny_dir, tmp_path / "ckpt")
    _edit_shard(
        folder, lambda t: t.update({"model.layers.0.self_attn.extra.weight": torch.zeros(2, 2)})
    )
    with pytest.raises(
        CheckpointError, match=r"unexpected tensor\(s\): model\.layers\.0\.self_attn\.extra\.weight"
    ):
        model.load(folder, dtype=torch.float32)


def test_wrong_shape_is_named(tiny_dir, tmp_path):
    folder = _copy(tiny_dir, tmp_path / "ckpt")
    name = "model.layers.0.self_attn.kv_b_proj.weight"
    _edit_shard(folder, lambda t: t.update({name: torch.zeros(3, 5, dtype=torch.bfloat16)}))
    with pytest.raises(CheckpointError, match=rf"{name} has shape \[3, 5\], expected \[128, 32\]"):
        model.load(folder, dtype=torch.float32)


def test_missing_config_field_and_files(tiny_dir, tmp_path):
    folder = _copy(tiny_dir, tmp_path / "ckpt")
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["q_lora_rank"]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="missing required field 'q_lora_rank'"):
        model.load(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text((tiny_dir / "config.json").read_text())
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        model.load(empty)
    with pytest.raises(ConfigError, match="attention"):
        model.load(tiny_dir, attention="sideways")


def test_single_file_checkpoint(tiny_dir, tmp_path):
    folder = tmp_path / "single"
    folder.mkdir()
    tensors = {}
    for shard in sorted(tiny_dir.glob("*.safetensors")):
        with safe_open(str(shard), framework="pt") as f:
            tensors.update({k: f.get_tensor(k) for k in f.keys()})  # noqa: SIM118 - not iterable
    save_file(tensors, str(folder / "model.safetensors"))
    shutil.copy(tiny_dir / "config.json", folder / "config.json")
    a, b = model.load(folder, dtype=torch.float32), model.load(tiny_dir, dtype=torch.float32)
    x = torch.arange(12)[None]
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_import_model_is_cheap():
    code = "import sys, model, model.encoding; print(sorted(m for m in ('torch', 'pydantic', 'safetensors') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "[]"


def test_loaded_weights_do_not_depend_on_the_files(tiny_dir, tmp_path):
    """safetensors tensors are views of the file mapping; the loader must own its copies, or
    rewriting or deleting a checkpoint under a running model would change or break it."""
    folder = _copy(tiny_dir, tmp_path / "ckpt")
    m = model.load(folder, dtype=torch.bfloat16)
    x = torch.arange(20)[None]
    with torch.no_grad():
        before = m(x)
    for shard in folder.glob("*.safetensors"):
        size = shard.stat().st_size
        with open(shard, "r+b") as f:  # same inode, so a live mapping would see the new bytes
            f.write(b"\x00" * size)
    with torch.no_grad():
        assert torch.equal(m(x), before)


def test_wrong_scale_shape_is_named(fp8_dir, tmp_path):
    folder = _copy(fp8_dir, tmp_path / "ckpt")
    name = "model.layers.0.self_attn.q_a_proj.weight_scale_inv"
    _edit_shard(folder, lambda t: t.update({name: torch.ones(7, 7)}) if name in t else None)
    index = json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"]
    assert name in index
    for keep in (False, True):
        with pytest.raises(CheckpointError, match=rf"{name} has shape \[7, 7\], expected \[2, 2\]"):
            model.load(folder, keep_fp8=keep)


def test_tied_embeddings(tiny_dir, tmp_path):
    folder = _copy(tiny_dir, tmp_path / "ckpt")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["tie_word_embeddings"] = True
    (folder / "config.json").write_text(json.dumps(cfg))
    m = model.load(folder, dtype=torch.float32)
    assert m.lm_head.weight is m.model.embed_tokens.weight
    _edit_shard(folder, lambda t: t.pop("lm_head.weight"), containing="lm_head.weight")
    index = json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"]
    assert "lm_head.weight" not in index
    m = model.load(folder, dtype=torch.float32)
    assert m.lm_head.weight is m.model.embed_tokens.weight
