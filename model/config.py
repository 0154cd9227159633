"""Configuration: the checkpoint's config.json read unchanged, plus our run-time options.

`ModelConfig` accepts the released DeepSeek-V3.2 config.json as published (`rope_scaling` +
`rope_theta`) and the transformers-5 spelling that `save_pretrained` writes (`rope_parameters`).
Unknown fields are kept (pydantic `extra="allow"`) so a config read and written back loses nothing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from model.errors import ConfigError


class RopeConfig(BaseModel):
    """Rotary embedding settings, normalised from either config spelling."""

    model_config = ConfigDict(extra="allow")

    theta: float = Field(description="Base wavelength (rope_theta).")
    rope_type: str = Field("default", description="'default' or 'yarn'.")
    factor: float = Field(1.0, description="YaRN context extension factor (40 in the release).")
    original_max_position_embeddings: int | None = Field(
        None, description="Pre-training context (4096)."
    )
    beta_fast: float = Field(
        32.0, description="YaRN: rotations above which a dimension is extrapolated."
    )
    beta_slow: float = Field(
        1.0, description="YaRN: rotations below which a dimension is interpolated."
    )
    mscale: float | None = Field(None, description="YaRN magnitude scale numerator factor.")
    mscale_all_dim: float | None = Field(
        None, description="YaRN scale also applied to the softmax."
    )
    attention_factor: float | None = Field(
        None, description="Explicit cos/sin scale, overrides mscale."
    )
    truncate: bool = Field(True, description="Round the YaRN correction range to whole dimensions.")


class QuantizationConfig(BaseModel):
    """The released `quantization_config`: FP8 e4m3 weights with block scales."""

    model_config = ConfigDict(extra="allow")

    quant_method: str = Field("fp8", description="Only 'fp8' is understood.")
    fmt: str = Field("e4m3", description="FP8 flavour of the stored weights.")
    weight_block_size: tuple[int, int] = Field((128, 128), description="Rows x columns per scale.")
    activation_scheme: str = Field("dynamic", description="Activations are quantised on the fly.")
    scale_fmt: str | None = Field(None, description="'ue8m0': scales are powers of two.")


class ModelConfig(BaseModel):
    """DeepSeek-V3.2 architecture, field names exactly as in the Hugging Face config.json."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    vocab_size: int = Field(description="Rows of the embedding and of lm_head.")
    hidden_size: int = Field(description="Residual stream width (7168).")
    intermediate_size: int = Field(description="Hidden width of the dense MLP layers.")
    moe_intermediate_size: int = Field(description="Hidden width of each routed / shared expert.")
    num_hidden_layers: int = Field(description="Decoder layers, not counting the MTP layer(s).")
    num_attention_heads: int = Field(description="MLA query heads (128).")
    q_lora_rank: int = Field(description="Width of the query latent (1536).")
    kv_lora_rank: int = Field(description="Width of the key/value latent (512).")
    qk_nope_head_dim: int = Field(description="Per-head query/key width without rotary (128).")
    qk_rope_head_dim: int = Field(description="Rotary query/key width shared by heads (64).")
    v_head_dim: int = Field(description="Per-head value width (128).")
    n_routed_experts: int = Field(description="Routed experts per MoE layer (256).")
    num_experts_per_tok: int = Field(description="Experts each token is sent to (8).")
    index_topk: int = Field(description="Keys each query keeps after the lightning indexer (2048).")
    index_n_heads: int = Field(description="Indexer heads (64).")
    index_head_dim: int = Field(description="Indexer query/key width (128).")

    n_shared_experts: int = Field(1, description="Shared experts (their widths are summed).")
    n_group: int = Field(1, description="Expert groups for group-limited routing.")
    topk_group: int = Field(1, description="Groups a token may route into.")
    routed_scaling_factor: float = Field(
        1.0, description="Multiplier on the routed experts' weights."
    )
    norm_topk_prob: bool = Field(True, description="Normalise the chosen experts' scores to sum 1.")
    scoring_func: str = Field(
        "sigmoid", description="Router score function; only sigmoid is supported."
    )
    topk_method: str = Field(
        "noaux_tc", description="Router selection; bias-corrected group top-k."
    )
    first_k_dense_replace: int = Field(
        0, description="Leading layers with a dense MLP instead of MoE."
    )
    hidden_act: str = Field("silu", description="MLP activation; only silu is supported.")
    rms_norm_eps: float = Field(1e-6, description="RMSNorm epsilon of the layer norms.")
    max_position_embeddings: int = Field(163840, description="Longest supported context.")
    tie_word_embeddings: bool = Field(False, description="lm_head shares the embedding matrix.")
    attention_bias: bool = Field(
        False, description="Biases on the attention projections (unsupported)."
    )
    bos_token_id: int | None = Field(0, description="Begin-of-sentence token id.")
    eos_token_id: int | list[int] | None = Field(1, description="End-of-sentence token id(s).")
    num_nextn_predict_layers: int = Field(
        0, description="Multi-token-prediction layers (skipped on load)."
    )
    rope_theta: float | None = Field(None, description="Released spelling of the rotary base.")
    rope_scaling: dict[str, Any] | None = Field(
        None, description="Released spelling of rotary scaling."
    )
    rope_parameters: dict[str, Any] | None = Field(None, description="transformers-5 spelling.")
    quantization_config: QuantizationConfig | None = Field(
        None, description="FP8 block quantisation."
    )

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if self.rope_theta is None and not self.rope_parameters:
            raise ValueError(
                "no rotary settings: need 'rope_theta' (+ 'rope_scaling') or 'rope_parameters'"
            )
        if self.scoring_func != "sigmoid":
            raise ValueError(
                f"scoring_func {self.scoring_func!r} is not supported (only 'sigmoid')"
            )
        if self.hidden_act != "silu":
            raise ValueError(f"hidden_act {self.hidden_act!r} is not supported (only 'silu')")
        if self.attention_bias:
            raise ValueError("attention_bias=true is not supported by DeepSeek-V3.2 checkpoints")
        if self.n_routed_experts % self.n_group:
            raise ValueError(
                f"n_routed_experts {self.n_routed_experts} not divisible by n_group {self.n_group}"
            )
        if self.qk_rope_head_dim > self.index_head_dim:
            raise ValueError("index_head_dim must be at least qk_rope_head_dim")
        self.rope()  # validate the rotary dict now rather than at first forward
        return self

    def rope(self) -> RopeConfig:
        """The rotary settings from whichever spelling the file used."""
        if self.rope_parameters:
            raw = dict(self.rope_parameters)
            theta = raw.pop("rope_theta", self.rope_theta)
        else:
            raw = dict(self.rope_scaling or {})
            theta = self.rope_theta
        raw.setdefault("rope_type", raw.pop("type", "default"))
        raw.pop("type", None)
        return RopeConfig(theta=theta, **raw)

    @property
    def qk_head_dim(self) -> int:
        """Query/key width per head in the expanded form (192)."""
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    def is_moe_layer(self, layer: int) -> bool:
        """Whether decoder layer `layer` uses the MoE block (the first `first_k_dense_replace` do not)."""
        return layer >= self.first_k_dense_replace

    def softmax_scale(self) -> float:
        """MLA softmax scale: 1/sqrt(192), times YaRN's mscale squared when scaling is on."""
        scale = self.qk_head_dim**-0.5
        rope = self.rope()
        if rope.rope_type == "yarn" and rope.mscale_all_dim and rope.factor > 1:
            m = 0.1 * rope.mscale_all_dim * math.log(rope.factor) + 1.0
            scale = scale * m * m
        return scale


class RunOptions(BaseModel):
    """How to run a loaded model; not part of config.json."""

    model_config = ConfigDict(extra="forbid")

    attention: Literal["absorbed", "expanded"] = Field(
        "absorbed",
        description="MLA form: 'absorbed' attends over the 576-dim latent (what DSA and the "
        "kernels use); 'expanded' builds per-head keys and values as transformers does.",
    )
    indexer: Literal["exact", "fp8"] = Field(
        "exact",
        description="Lightning-indexer scoring: float, or FP8 as DeepSeek's reference does it.",
    )
    keep_fp8: bool = Field(
        False,
        description="Keep FP8 checkpoint weights in FP8 (block-scaled matmul) instead of "
        "dequantising them to the model dtype on load.",
    )
    backend: Literal["auto", "torch", "triton"] = Field(
        "auto",
        description="Attention backend of the engine (`model.engine`): 'triton' runs the "
        "`kernels` package, 'torch' plain gathers; 'auto' picks Triton on CUDA and PyTorch elsewhere. "
        "The reference forward ignores it.",
    )


def read_config(path: str | Path) -> ModelConfig:
    """Read config.json (a file or the folder holding it); clear `ConfigError` on any problem."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"no config.json at {path}") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} does not hold a JSON object")
    return parse_config(raw, source=str(path))


def parse_config(raw: dict[str, Any], source: str = "config") -> ModelConfig:
    """Validate a config dict; the error names each missing or invalid field."""
    try:
        return ModelConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(config)"
            if err["type"] == "missing":
                problems.append(f"missing required field '{field}'")
            else:
                problems.append(f"field '{field}': {err['msg']}")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from exc
