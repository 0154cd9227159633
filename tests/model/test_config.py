"""config.json in both spellings, unknown fields kept, clear errors for missing fields."""

from __future__ import annotations

import json
import math

import pytest
import torch

import model
from model.config import ModelConfig, read_config
from model.errors import ConfigError
from model.rope import inv_frequencies
from tests.shared import FIXTURES

from .conftest import rel_err

RELEASED = FIXTURES / "deepseek-v32-config" / "config.json"
RELEASED_RAW = json.loads(RELEASED.read_text()) if RELEASED.is_file() else None


@pytest.fixture()
def released() -> dict:
    if RELEASED_RAW is None:
        pytest.skip("released config fixture not present")
    return json.loads(json.dumps(RELEASED_RAW))


def test_released_config_reads_unchanged(released):
    cfg = read_config(RELEASED)
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.index_topk) == (61, 7168, 2048)
    assert cfg.qk_head_dim == 192 and cfg.kv_lora_rank + cfg.qk_rope_head_dim == 576
    assert cfg.quantization_config.weight_block_size == (128, 128)
    rope = cfg.rope()
    assert (rope.rope_type, rope.factor, rope.original_max_position_embeddings) == (
        "yarn",
        40,
        4096,
    )
    # Fields we do not model are kept, and the file round-trips.
    assert cfg.model_extra["ep_size"] == 1 and cfg.model_extra["architectures"] == [
        "DeepseekV32ForCausalLM"
    ]
    dumped = cfg.model_dump(exclude_unset=True)
    for key, value in released.items():
        assert json.loads(json.dumps(dumped[key])) == value, key


def test_softmax_scale_has_yarn_correction(released):
    cfg = read_config(RELEASED)
    mscale = 0.1 * math.log(40) + 1.0
    assert cfg.softmax_scale() == pytest.approx(192**-0.5 * mscale * mscale)


def test_yarn_frequencies_match_transformers(released):
    transformers = pytest.importorskip("transformers")
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    ref_cfg = transformers.DeepseekV32Config(**released)
    want, want_mag = ROPE_INIT_FUNCTIONS["yarn"](ref_cfg, "cpu")
    got, mag = inv_frequencies(read_config(RELEASED).rope(), 64)
    assert torch.allclose(got, want.float(), rtol=1e-6) and mag == pytest.approx(want_mag)


def test_rope_parameters_spelling(released):
    rope = {**released.pop("rope_scaling"), "rope_theta": released.pop("rope_theta")}
    rope["rope_type"] = rope.pop("type")
    cfg = ModelConfig.model_validate({**released, "rope_parameters": rope})
    assert cfg.rope() == read_config(RELEASED).rope()


@pytest.mark.parametrize("field", ["hidden_size", "index_topk", "kv_lora_rank"])
def test_missing_field_is_named(released, tmp_path, field):
    del released[field]
    (tmp_path / "config.json").write_text(json.dumps(released))
    with pytest.raises(ConfigError, match=f"missing required field '{field}'"):
        read_config(tmp_path)


def test_bad_values_and_files_are_clear_errors(released, tmp_path):
    with pytest.raises(ConfigError, match="no config.json"):
        read_config(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read"):
        read_config(tmp_path)
    released["hidden_size"] = "wide"
    released.pop("rope_theta")
    released.pop("rope_scaling")
    (tmp_path / "config.json").write_text(json.dumps(released))
    with pytest.raises(ConfigError, match="hidden_size"):
        read_config(tmp_path)


@torch.no_grad()
def test_save_pretrained_folder_loads_and_matches(reference, tmp_path):
    """transformers 5 writes `rope_parameters` and its own shard layout; we read it as is."""
    reference.save_pretrained(tmp_path)
    raw = json.loads((tmp_path / "config.json").read_text())
    assert "rope_parameters" in raw and "rope_scaling" not in raw
    ours = model.load(tmp_path, dtype=torch.float32)
    x = torch.randint(0, 400, (1, 40), generator=torch.Generator().manual_seed(0))
    assert rel_err(ours(x), reference(x).logits) < 1e-4


def test_release_scale_architecture_on_meta(released):
    """At the released width, our module's tensors are exactly the release's names and shapes
    (the MTP layer aside), and the parameter count is DeepSeek-V3's 671B plus the indexers."""
    from model.tiny import checkpoint_shapes
    from model.transformer import DeepseekV32

    cfg = read_config(RELEASED)
    with torch.device("meta"):
        m = DeepseekV32(cfg)
    ours = {n: tuple(t.shape) for n, t in m.named_parameters()}
    ours.update({n: tuple(t.shape) for n, t in m.named_buffers() if n != "inv_freq"})
    release = {
        n: s for n, s in checkpoint_shapes(released).items() if not n.startswith("model.layers.61.")
    }
    assert ours == release
    total = sum(t.numel() for t in m.parameters())
    indexer = sum(t.numel() for n, t in m.named_parameters() if ".indexer." in n)
    assert indexer == 61 * (1536 * 64 * 128 + 7168 * 128 + 2 * 128 + 7168 * 64)
    assert round((total - indexer) / 1e9) == 671
