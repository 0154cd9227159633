"""Tiny random DeepSeek-V3.2 checkpoints in exactly the released layout, for tests and demos.

    python -m model.tiny OUT_DIR [--fp8] [--layers N] [--seed S] [--shards K] [--hidden H]

Writes config.json (released field names, `rope_scaling` + `rope_theta` spelling), sharded
safetensors with the released tensor names (per-expert MLPs, `e_score_correction_bias`, the
indexer, one extra multi-token-prediction layer numbered `num_hidden_layers`) and their
`model.safetensors.index.json`, optionally FP8 e4m3 weights with block `weight_scale_inv`, plus a
byte-level BPE tokenizer.json carrying DeepSeek-V3.2's special tokens.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import torch

from model.fp8 import quantize_blocks

SPECIAL_TOKENS = [  # ids 0.. in this order; 0 and 1 are bos / eos as in the release
    "<｜begin▁of▁sentence｜>",
    "<｜end▁of▁sentence｜>",
    "<｜▁pad▁｜>",
    "<｜User｜>",
    "<｜Assistant｜>",
]
ADDED_TOKENS = ["<think>", "</think>", "｜DSML｜", "<function_results>", "</function_results>"]

_CORPUS = [
    "The quick brown fox jumps over the lazy dog. def main():\n    return 0\n",
    "import os\nfor i in range(10):\n    print(i, os.getcwd())\n",
    "明天杭州和北京的天气怎么样？ 后天的天气情况 温度 湿度 多云 晴 小雨",
    '{"location": "Hangzhou", "date": "2024-01-16", "temperature_high": "12"}',
    "<think>reasoning about the tool results</think> Here is the answer.",
    'name="get_weather" string="true" parameter invoke function_calls',
]


def tiny_config(
    layers: int = 2, fp8: bool = False, vocab_size: int = 512, hidden: int = 64
) -> dict[str, Any]:
    """A config.json dict with the released field names and tiny sizes (index_topk 8)."""
    cfg: dict[str, Any] = {
        "architectures": ["DeepseekV32ForCausalLM"],
        "model_type": "deepseek_v32",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "ep_size": 1,
        "first_k_dense_replace": 1,
        "hidden_act": "silu",
        "hidden_size": hidden,
        "index_head_dim": 32,
        "index_n_heads": 16,
        "index_topk": 8,
        "initializer_range": 0.02,
        "intermediate_size": 2 * hidden,
        "kv_lora_rank": 32,
        "max_position_embeddings": 163840,
        "moe_intermediate_size": 32,
        "moe_layer_freq": 1,
        "n_group": 4,
        "n_routed_experts": 8,
        "n_shared_experts": 1,
        "norm_topk_prob": True,
        "num_attention_heads": 4,
        "num_experts_per_tok": 2,
        "num_hidden_layers": layers,
        "num_key_value_heads": 4,
        "num_nextn_predict_layers": 1,
        "q_lora_rank": 48,
        "qk_nope_head_dim": 16,
        "qk_rope_head_dim": 16,
        "rms_norm_eps": 1e-6,
        "rope_scaling": {
            "beta_fast": 32,
            "beta_slow": 1,
            "factor": 40,
            "mscale": 1.0,
            "mscale_all_dim": 1.0,
            "original_max_position_embeddings": 4096,
            "type": "yarn",
        },
        "rope_theta": 10000,
        "routed_scaling_factor": 2.5,
        "scoring_func": "sigmoid",
        "tie_word_embeddings": False,
        "topk_group": 2,
        "topk_method": "noaux_tc",
        "torch_dtype": "bfloat16",
        "transformers_version": "4.44.2",
        "use_cache": True,
        "v_head_dim": 16,
        "vocab_size": vocab_size,
    }
    if fp8:
        # Blocks of 32 (the release uses 128) so tiny matrices still span several, some partial, blocks.
        cfg["quantization_config"] = {
            "activation_scheme": "dynamic",
            "fmt": "e4m3",
            "quant_method": "fp8",
            "scale_fmt": "ue8m0",
            "weight_block_size": [32, 32],
        }
    return cfg


def _layer_shapes(cfg: dict[str, Any], prefix: str, moe: bool) -> dict[str, tuple[int, ...]]:
    d, h = cfg["hidden_size"], cfg["num_attention_heads"]
    qk = cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"]
    a = prefix + "self_attn."
    shapes: dict[str, tuple[int, ...]] = {
        prefix + "input_layernorm.weight": (d,),
        prefix + "post_attention_layernorm.weight": (d,),
        a + "q_a_proj.weight": (cfg["q_lora_rank"], d),
        a + "q_a_layernorm.weight": (cfg["q_lora_rank"],),
        a + "q_b_proj.weight": (h * qk, cfg["q_lora_rank"]),
        a + "kv_a_proj_with_mqa.weight": (cfg["kv_lora_rank"] + cfg["qk_rope_head_dim"], d),
        a + "kv_a_layernorm.weight": (cfg["kv_lora_rank"],),
        a + "kv_b_proj.weight": (
            h * (cfg["qk_nope_head_dim"] + cfg["v_head_dim"]),
            cfg["kv_lora_rank"],
        ),
        a + "o_proj.weight": (d, h * cfg["v_head_dim"]),
        a + "indexer.wq_b.weight": (
            cfg["index_n_heads"] * cfg["index_head_dim"],
            cfg["q_lora_rank"],
        ),
        a + "indexer.wk.weight": (cfg["index_head_dim"], d),
        a + "indexer.k_norm.weight": (cfg["index_head_dim"],),
        a + "indexer.k_norm.bias": (cfg["index_head_dim"],),
        a + "indexer.weights_proj.weight": (cfg["index_n_heads"], d),
    }
    m = prefix + "mlp."
    if not moe:
        f = cfg["intermediate_size"]
        shapes.update(
            {
                m + "gate_proj.weight": (f, d),
                m + "up_proj.weight": (f, d),
                m + "down_proj.weight": (d, f),
            }
        )
        return shapes
    f, e = cfg["moe_intermediate_size"], cfg["n_routed_experts"]
    shapes[m + "gate.weight"] = (e, d)
    shapes[m + "gate.e_score_correction_bias"] = (e,)
    for i in range(e):
        x = f"{m}experts.{i}."
        shapes.update(
            {
                x + "gate_proj.weight": (f, d),
                x + "up_proj.weight": (f, d),
                x + "down_proj.weight": (d, f),
            }
        )
    fs = f * cfg["n_shared_experts"]
    s = m + "shared_experts."
    shapes.update(
        {
            s + "gate_proj.weight": (fs, d),
            s + "up_proj.weight": (fs, d),
            s + "down_proj.weight": (d, fs),
        }
    )
    return shapes


def checkpoint_shapes(cfg: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every tensor name of a released-layout checkpoint (MTP layers included) and its shape."""
    d, v, n = cfg["hidden_size"], cfg["vocab_size"], cfg["num_hidden_layers"]
    shapes: dict[str, tuple[int, ...]] = {
        "model.embed_tokens.weight": (v, d),
        "model.norm.weight": (d,),
        "lm_head.weight": (v, d),
    }
    for i in range(n + cfg.get("num_nextn_predict_layers", 0)):
        prefix = f"model.layers.{i}."
        shapes.update(_layer_shapes(cfg, prefix, moe=i >= cfg["first_k_dense_replace"]))
        if i >= n:  # the multi-token-prediction layer's own extras
            shapes.update(
                {
                    prefix + "embed_tokens.weight": (v, d),
                    prefix + "enorm.weight": (d,),
                    prefix + "hnorm.weight": (d,),
                    prefix + "eh_proj.weight": (d, 2 * d),
                    prefix + "shared_head.norm.weight": (d,),
                    prefix + "shared_head.head.weight": (v, d),
                }
            )
    return shapes


def is_quantized_weight(name: str, shape: tuple[int, ...]) -> bool:
    """Whether the release stores this tensor in FP8: the 2-D projection weights of attention,
    indexer (wq_b, wk) and MLPs; not embeddings, lm_head, norms, the router or weights_proj."""
    if len(shape) != 2 or not name.endswith(".weight"):
        return False
    skip = ("embed_tokens", "lm_head", "mlp.gate.weight", "weights_proj", "eh_proj", "shared_head")
    return not any(s in name for s in skip)


def random_tensors(cfg: dict[str, Any], seed: int) -> dict[str, torch.Tensor]:
    """Random float32 tensors for every name, scaled so activations stay O(1)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in checkpoint_shapes(cfg).items():
        if name.endswith("embed_tokens.weight"):
            t = torch.randn(shape, generator=gen)
        elif name.endswith("e_score_correction_bias"):
            t = 0.1 * torch.rand(shape, generator=gen)
        elif name.endswith("k_norm.bias"):
            t = 0.1 * torch.randn(shape, generator=gen)
        elif len(shape) == 1:  # norm weights
            t = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        else:
            t = torch.randn(shape, generator=gen) * shape[1] ** -0.5
        out[name] = t
    return out


def build_tokenizer(vocab_size: int):
    """Byte-level BPE (any text round-trips) with DeepSeek-V3.2's special and added tokens."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(ADDED_TOKENS),
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ADDED_TOKENS])
    return tok


def write_tiny_checkpoint(
    out: str | Path,
    layers: int = 2,
    fp8: bool = False,
    seed: int = 0,
    shards: int = 2,
    hidden: int = 64,
    overrides: dict[str, Any] | None = None,
) -> Path:
    """Write a complete tiny checkpoint folder and return its path.

    `overrides` replaces config fields (e.g. larger experts for the load-memory benchmark)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(vocab_size=400)
    vocab = 64 * math.ceil(tok.get_vocab_size() / 64)
    cfg = {
        **tiny_config(layers=layers, fp8=fp8, vocab_size=vocab, hidden=hidden),
        **(overrides or {}),
    }
    tensors: dict[str, torch.Tensor] = {}
    for name, t in random_tensors(cfg, seed).items():
        t = t.to(torch.bfloat16)
        if fp8 and is_quantized_weight(name, tuple(t.shape)):
            q, scale = quantize_blocks(
                t.float(), tuple(cfg["quantization_config"]["weight_block_size"])
            )
            tensors[name], tensors[name + "_scale_inv"] = q, scale
        else:
            tensors[name] = t.contiguous()
    _write_shards(out, tensors, shards)
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    tok.save(str(out / "tokenizer.json"))
    tok_cfg = {
        "bos_token": SPECIAL_TOKENS[0],
        "eos_token": SPECIAL_TOKENS[1],
        "pad_token": SPECIAL_TOKENS[2],
        "add_bos_token": False,
        "add_eos_token": False,
        "model_max_length": 131072,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    (out / "tokenizer_config.json").write_text(
        json.dumps(tok_cfg, indent=2) + "\n", encoding="utf-8"
    )
    return out


def _write_shards(out: Path, tensors: dict[str, torch.Tensor], shards: int) -> None:
    """Split by cumulative bytes into `shards` files plus model.safetensors.index.json.

    A weight and its `_scale_inv` always share a shard, as in the release."""
    from safetensors.torch import save_file

    names = [n for n in tensors if not n.endswith("_scale_inv")]
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    per = total / max(shards, 1)
    groups: list[list[str]] = [[]]
    size = 0
    for n in names:
        if size >= per * len(groups) and len(groups) < shards:
            groups.append([])
        groups[-1].append(n)
        size += sum(
            tensors[k].numel() * tensors[k].element_size()
            for k in (n, n + "_scale_inv")
            if k in tensors
        )
    weight_map = {}
    for i, group in enumerate(groups):
        fname = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
        part = {}
        for n in group:
            for k in (n, n + "_scale_inv"):
                if k in tensors:
                    part[k] = tensors[k]
                    weight_map[k] = fname
        save_file(part, str(out / fname), metadata={"format": "pt"})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(
        json.dumps(index, indent=2) + "\n", encoding="utf-8"
    )


def main(argv: list[str] | None = None) -> int:
    """CLI entry point (see module docstring)."""
    p = argparse.ArgumentParser(
        prog="python -m model.tiny", description="Write a tiny random DeepSeek-V3.2 checkpoint."
    )
    p.add_argument("out_dir")
    p.add_argument(
        "--fp8", action="store_true", help="store projection weights as FP8 e4m3 with block scales"
    )
    p.add_argument(
        "--layers", type=int, default=2, help="decoder layers (the first is dense, the rest MoE)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shards", type=int, default=2, help="number of safetensors files")
    p.add_argument("--hidden", type=int, default=64, help="hidden size")
    args = p.parse_args(argv)
    path = write_tiny_checkpoint(
        args.out_dir,
        layers=args.layers,
        fp8=args.fp8,
        seed=args.seed,
        shards=args.shards,
        hidden=args.hidden,
    )
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
