"""Load a Hugging Face-layout DeepSeek-V3.2 checkpoint with bounded host memory.

The module is built on the `meta` device (no storage), every tensor name is checked against the
architecture before any data is read, and then the shards are processed one at a time: each tensor
is read from the memory-mapped file, dequantised if asked, moved once to its device and dtype and
assigned in place of its meta parameter. A shard's mapping is closed before the next one opens, so
host memory peaks near one shard plus whatever of the model lives on the CPU.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from model.config import ModelConfig, RunOptions, read_config
from model.errors import CheckpointError, ConfigError
from model.fp8 import FP8Linear, block_scale_shape, dequantize_blocks
from model.transformer import DeepseekV32

log = logging.getLogger(__name__)

SCALE_SUFFIX = "_scale_inv"  # `X.weight_scale_inv` holds the block scales of `X.weight`
FLOAT32_TENSORS = ("mlp.gate.weight", "e_score_correction_bias", "indexer.weights_proj.weight")
_LAYER = re.compile(r"^model\.layers\.(\d+)\.")


def load_checkpoint(
    path: str | Path,
    device: Any = "cpu",
    dtype: torch.dtype | None = None,
    progress: Any = None,
    **options: Any,
) -> DeepseekV32:
    """Build the model on `device` in `dtype` (bfloat16 by default) from the folder `path`.
    `progress(done, total)`, when given, is called after each shard (a large model has many)."""
    path = Path(path)
    cfg, model, where, targets, plan, block = _prepare(path, options)
    dtype = dtype or torch.bfloat16
    device = torch.device(device)

    by_file: dict[str, list[str]] = defaultdict(list)
    for name in plan:
        by_file[where[name]].append(name)
    for i, (fname, names) in enumerate(by_file.items(), 1):
        _load_shard(path, fname, names, where, model, targets, block, device, dtype)
        if progress is not None:
            progress(i, len(by_file))
    if cfg.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    model.inv_freq = model.inv_freq.to(device)
    leftover = [
        n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta
    ]
    if leftover:  # a programming error in the plan, not a bad checkpoint
        raise CheckpointError(f"tensors never loaded: {', '.join(leftover[:10])}")
    return model.eval()


def check_checkpoint(path: str | Path, **options: Any) -> ModelConfig:
    """Everything `load_checkpoint` checks before it reads a tensor (the config, the options, the
    shard index, every tensor's name and shape from the files' headers), on the meta device;
    the config. Raises the same errors `load_checkpoint` would."""
    return _prepare(Path(path), options)[0]


_WARNED: set[tuple[str, str]] = set()


def _warn_once(path: Path, message: str) -> None:
    """A warning about a checkpoint, once per folder and process (checking it and loading it
    both plan the load)."""
    key = (str(path.resolve()), message)
    if key not in _WARNED:
        _WARNED.add(key)
        log.warning(message)


def _prepare(path: Path, options: dict[str, Any]) -> tuple:
    """The config, the model on the meta device, the shard map, the tensors to fill, the load
    plan and the FP8 block size, all checked against the checkpoint's headers."""
    cfg = read_config(path)
    try:
        opts = RunOptions(**options)
    except ValidationError as exc:
        raise ConfigError(f"bad load option: {exc}") from exc
    where = shard_map(path)
    block = (
        tuple(cfg.quantization_config.weight_block_size) if cfg.quantization_config else (128, 128)
    )
    with torch.device("meta"):
        model = DeepseekV32(cfg, opts)
        if opts.keep_fp8:
            _use_fp8_linears(model, where, block)
    targets = _targets(model)
    plan = _plan(cfg, where, targets, path)
    _check_shapes(path, where, plan, targets, block)
    return cfg, model, where, targets, plan, block


def shard_map(path: Path) -> dict[str, str]:
    """Tensor name -> safetensors file name, from model.safetensors.index.json or a single file."""
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CheckpointError(f"cannot read {index}: {exc}") from exc
        missing_files = sorted({f for f in weight_map.values() if not (path / f).is_file()})
        if missing_files:
            raise CheckpointError(
                f"{index} names shard(s) that do not exist: {', '.join(missing_files)}"
            )
        return dict(weight_map)
    single = path / "model.safetensors"
    if not single.is_file():
        raise CheckpointError(f"no model.safetensors.index.json or model.safetensors in {path}")
    with _open(single) as f:
        return {k: single.name for k in f.keys()}  # noqa: SIM118 - safe_open is not iterable


def _use_fp8_linears(model: nn.Module, where: dict[str, str], block: tuple[int, int]) -> None:
    """Swap (on meta) each nn.Linear whose checkpoint weight carries block scales for an FP8Linear."""
    for name, mod in list(model.named_modules()):
        if isinstance(mod, nn.Linear) and f"{name}.weight{SCALE_SUFFIX}" in where:
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name)
            setattr(parent, attr, FP8Linear(mod.in_features, mod.out_features, block))


def _targets(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every tensor the checkpoint must provide: parameters and persistent buffers (on meta)."""
    targets = dict(model.named_parameters())
    targets.update(
        {n: b for n, b in model.named_buffers() if n.rsplit(".", 1)[-1] not in ("inv_freq",)}
    )
    if model.cfg.tie_word_embeddings:
        targets.pop("lm_head.weight", None)
    return targets


def _plan(
    cfg: ModelConfig, where: dict[str, str], targets: dict[str, torch.Tensor], path: Path
) -> list[str]:
    """Names to load; raise on missing or unexpected tensors; skip the MTP layer(s) with a note."""
    skipped, unexpected = [], []
    for name in where:
        m = _LAYER.match(name)
        if m and int(m.group(1)) >= cfg.num_hidden_layers:
            skipped.append(name)
        elif name == "lm_head.weight" and cfg.tie_word_embeddings:
            _warn_once(path, "tie_word_embeddings is set: ignoring the stored lm_head.weight")
        elif name not in targets and not (
            name.endswith(SCALE_SUFFIX) and name[: -len(SCALE_SUFFIX)] in where
        ):
            unexpected.append(name)
    if skipped:
        layers = sorted({int(_LAYER.match(n).group(1)) for n in skipped})
        _warn_once(
            path,
            f"skipping {len(skipped)} tensors of multi-token-prediction layer(s) {layers}: "
            "speculative decoding with the MTP head is not implemented",
        )
    missing = [n for n in targets if n not in where]
    problems = []
    if missing:
        problems.append(f"missing tensor(s): {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected tensor(s): {_names(unexpected)}")
    if problems:
        raise CheckpointError("checkpoint does not match the config: " + "; ".join(problems))
    return [n for n in targets]


def _names(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _check_shapes(
    path: Path,
    where: dict[str, str],
    plan: list[str],
    targets: dict[str, torch.Tensor],
    block: tuple[int, int],
) -> None:
    """Compare every stored shape (and scale shape) with the model's before reading any data."""
    by_file: dict[str, list[str]] = defaultdict(list)
    for name in plan:
        by_file[where[name]].append(name)
        if name + SCALE_SUFFIX in where and name + SCALE_SUFFIX not in targets:
            by_file[where[name + SCALE_SUFFIX]].append(name + SCALE_SUFFIX)
    bad = []
    for fname, names in by_file.items():
        with _open(path / fname) as f:
            stored = set(f.keys())
            for name in names:
                if name not in stored:
                    raise CheckpointError(
                        f"index says {name} is in {fname}, but that file lacks it"
                    )
                shape = tuple(f.get_slice(name).get_shape())
                if name.endswith(SCALE_SUFFIX) and name not in targets:
                    want = block_scale_shape(
                        tuple(targets[name[: -len(SCALE_SUFFIX)]].shape), block
                    )
                else:
                    want = tuple(targets[name].shape)
                if shape != want:
                    bad.append(f"{name} has shape {list(shape)}, expected {list(want)}")
    if bad:
        raise CheckpointError("wrong tensor shape(s): " + "; ".join(bad[:8]))


def _target_dtype(name: str, target: torch.Tensor, dtype: torch.dtype) -> torch.dtype:
    if target.dtype in (torch.float8_e4m3fn,) or name.endswith(SCALE_SUFFIX):
        return target.dtype  # FP8 weights and their scales stay as stored
    if name.endswith(FLOAT32_TENSORS):
        return torch.float32  # routing and indexer head weights are precision-sensitive
    return dtype


def _load_shard(
    path: Path,
    fname: str,
    names: list[str],
    where: dict[str, str],
    model: nn.Module,
    targets: dict[str, torch.Tensor],
    block: tuple[int, int],
    device: torch.device,
    dtype: torch.dtype,
) -> None:
    with _open(path / fname) as f:
        for name in names:
            tensor = f.get_tensor(name)
            want = _target_dtype(name, targets[name], dtype)
            scale_name = name + SCALE_SUFFIX
            if tensor.dtype == torch.float8_e4m3fn and want != torch.float8_e4m3fn:
                if scale_name not in where:
                    raise CheckpointError(f"{name} is FP8 but the checkpoint has no {scale_name}")
                scale = _read(
                    path, where[scale_name], scale_name, f if where[scale_name] == fname else None
                )
                tensor = dequantize_blocks(tensor, scale, block, want, low_memory=True)
                owned = tensor.device == device
            else:
                owned = False
            # safetensors hands out tensors backed by the file mapping; an owned copy keeps the
            # model independent of the file and lets the mapping go when the shard closes.
            _assign(
                model, name, tensor if owned else tensor.to(device=device, dtype=want, copy=True)
            )
            del tensor


def _read(path: Path, fname: str, name: str, handle: Any) -> torch.Tensor:
    """One tensor, from the open shard when it is there, else from its own file."""
    if handle is not None:
        return handle.get_tensor(name)
    with _open(path / fname) as f:
        return f.get_tensor(name)


@contextmanager
def _open(file: Path) -> Iterator[Any]:
    """A safetensors file opened on the CPU; a file that cannot be read (truncated, not
    safetensors, a tensor's bytes missing) is a CheckpointError naming it."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(file), framework="pt", device="cpu") as f:
            yield f
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{file.name} cannot be read as safetensors: {exc}") from exc


def _assign(model: nn.Module, name: str, tensor: torch.Tensor) -> None:
    """Replace the meta parameter or buffer `name` by `tensor` (no copy)."""
    owner_name, _, attr = name.rpartition(".")
    owner = model.get_submodule(owner_name)
    if attr in owner._parameters:
        owner._parameters[attr] = nn.Parameter(tensor, requires_grad=False)
    else:
        owner._buffers[attr] = tensor
