"""Model configuration: our own frozen view of a Hugging Face config (Llama / Qwen2 / Mistral)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.runtime.engine.errors import ModelLoadError
from tether.runtime.engine.tokenizer import BYTE_VOCAB_SIZE

SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM")
SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")
_ARCH_BY_MODEL_TYPE = {
    "llama": "LlamaForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "mistral": "MistralForCausalLM",
}


@dataclass(frozen=True)
class RopeConfig:
    """Rotary embedding parameters. ``factor`` and the llama3 fields are ignored by ``default``."""

    theta: float = 10000.0
    scaling_type: str = "default"  # "default" | "linear" | "llama3"
    factor: float = 1.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position_embeddings: int | None = None

    def __post_init__(self) -> None:
        if self.scaling_type not in SUPPORTED_ROPE_TYPES:
            raise ModelLoadError(
                f"unsupported rope type {self.scaling_type!r} (supported: {', '.join(SUPPORTED_ROPE_TYPES)})"
            )
        if self.scaling_type == "llama3" and self.original_max_position_embeddings is None:
            raise ModelLoadError("llama3 rope needs original_max_position_embeddings")


@dataclass(frozen=True)
class ModelConfig:
    """Everything the model code needs. ``attention_bias`` is the q/k/v bias; ``o_proj_bias`` the output one
    (Llama's ``attention_bias`` sets both, Qwen2 has q/k/v bias only)."""

    architecture: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    rms_norm_eps: float
    rope: RopeConfig
    max_position_embeddings: int
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()
    sliding_window: int | None = None
    o_proj_bias: bool = False

    def __post_init__(self) -> None:
        if self.architecture not in SUPPORTED_ARCHITECTURES:
            raise ModelLoadError(
                f"unsupported architecture {self.architecture!r} "
                f"(supported: {', '.join(SUPPORTED_ARCHITECTURES)})"
            )
        if self.num_heads % self.num_kv_heads != 0:
            raise ModelLoadError(
                f"num_heads={self.num_heads} is not a multiple of num_kv_heads={self.num_kv_heads}"
            )

    @property
    def q_size(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.num_kv_heads * self.head_dim

    @classmethod
    def from_hf(cls, hf_config: Any) -> ModelConfig:
        """Read a transformers config (4.x or 5.x) of a supported architecture; raises ``ModelLoadError``."""
        arch = _architecture(hf_config)
        if getattr(hf_config, "mlp_bias", False):
            raise ModelLoadError(f"{arch}: mlp_bias=True is not supported")
        heads = _count(hf_config, "num_attention_heads")
        hidden = _count(hf_config, "hidden_size")
        head_dim = _count(hf_config, "head_dim", None) or max(1, hidden // heads)
        is_qwen2 = arch == "Qwen2ForCausalLM"
        llama_bias = bool(getattr(hf_config, "attention_bias", False)) and arch == "LlamaForCausalLM"
        return cls(
            architecture=arch,
            vocab_size=_count(hf_config, "vocab_size"),
            hidden_size=hidden,
            num_layers=_count(hf_config, "num_hidden_layers"),
            num_heads=heads,
            num_kv_heads=_count(hf_config, "num_key_value_heads", None) or heads,
            head_dim=head_dim,
            intermediate_size=_count(hf_config, "intermediate_size"),
            rms_norm_eps=_number({"rms_norm_eps": getattr(hf_config, "rms_norm_eps", None)}, "rms_norm_eps"),
            rope=rope_from_hf(hf_config),
            max_position_embeddings=_count(hf_config, "max_position_embeddings"),
            tie_word_embeddings=bool(getattr(hf_config, "tie_word_embeddings", False)),
            attention_bias=is_qwen2 or llama_bias,
            bos_token_id=getattr(hf_config, "bos_token_id", None),
            eos_token_ids=_as_ids(getattr(hf_config, "eos_token_id", None)),
            sliding_window=_sliding_window(hf_config, arch),
            o_proj_bias=llama_bias,
        )


# The presets' shapes (the weights are built in ``presets``). ``tiny``: a small Llama with the byte tokenizer.
TINY_CONFIG = ModelConfig(
    architecture="LlamaForCausalLM",
    vocab_size=BYTE_VOCAB_SIZE,
    hidden_size=128,
    num_layers=4,
    num_heads=4,
    num_kv_heads=2,
    head_dim=32,
    intermediate_size=352,
    rms_norm_eps=1e-5,
    rope=RopeConfig(theta=10000.0),
    max_position_embeddings=32768,
    tie_word_embeddings=False,
    attention_bias=False,
    bos_token_id=256,
    eos_token_ids=(257, 260),
    sliding_window=None,
)

# Llama-3-8B's shapes with random weights: engine throughput on a GPU without a download. Byte tokenizer.
LLAMA3_8B_SHAPE_CONFIG = ModelConfig(
    architecture="LlamaForCausalLM",
    vocab_size=128256,
    hidden_size=4096,
    num_layers=32,
    num_heads=32,
    num_kv_heads=8,
    head_dim=128,
    intermediate_size=14336,
    rms_norm_eps=1e-5,
    rope=RopeConfig(
        theta=500000.0,
        scaling_type="llama3",
        factor=8.0,
        low_freq_factor=1.0,
        high_freq_factor=4.0,
        original_max_position_embeddings=8192,
    ),
    max_position_embeddings=131072,
    tie_word_embeddings=False,
    attention_bias=False,
    bos_token_id=256,
    eos_token_ids=(257, 260),
    sliding_window=None,
)


def rope_from_hf(hf_config: Any) -> RopeConfig:
    """transformers 5.x keeps it all in ``rope_parameters``; 4.x has ``rope_theta`` and ``rope_scaling``."""
    params = getattr(hf_config, "rope_parameters", None)
    if isinstance(params, dict) and "rope_theta" in params:
        theta = params["rope_theta"]
    else:
        params = getattr(hf_config, "rope_scaling", None) or {}
        theta = getattr(hf_config, "rope_theta", 10000.0)
    if not isinstance(params, dict):
        raise ModelLoadError(f"rope_scaling must be a mapping, got {params!r}")
    rope_type = params.get("rope_type", params.get("type", "default"))
    if params.get("partial_rotary_factor", 1.0) != 1.0:
        raise ModelLoadError(f"partial_rotary_factor={params['partial_rotary_factor']} is not supported")
    original = params.get("original_max_position_embeddings")
    if rope_type == "llama3" and original is None:
        original = _count(hf_config, "max_position_embeddings")
    if original is not None and (isinstance(original, bool) or not isinstance(original, int) or original < 1):
        raise ModelLoadError(
            f"rope original_max_position_embeddings must be an integer >= 1, got {original!r}"
        )
    return RopeConfig(
        theta=_number({"rope_theta": theta}, "rope_theta"),
        scaling_type=rope_type,
        factor=_number(params, "factor", 1.0),
        low_freq_factor=_number(params, "low_freq_factor", 1.0),
        high_freq_factor=_number(params, "high_freq_factor", 4.0),
        original_max_position_embeddings=original,
    )


def _count(hf_config: Any, name: str, default: Any = ...) -> Any:
    """``hf_config.name`` as an integer >= 1 (``default`` when absent or ``None``); ``ModelLoadError``."""
    value = getattr(hf_config, name, None)
    if value is None and default is not ...:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelLoadError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def _number(params: Any, name: str, default: Any = ...) -> float:
    value = params.get(name, default) if isinstance(params, dict) else default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelLoadError(f"{name} must be a number, got {value!r}")
    return float(value)


def _architecture(hf_config: Any) -> str:
    declared = list(getattr(hf_config, "architectures", None) or [])
    for arch in declared:
        if arch in SUPPORTED_ARCHITECTURES:
            return arch
    if declared:
        raise ModelLoadError(
            f"unsupported architecture {declared[0]!r} (supported: {', '.join(SUPPORTED_ARCHITECTURES)})"
        )
    model_type = getattr(hf_config, "model_type", None)
    if model_type not in _ARCH_BY_MODEL_TYPE:
        raise ModelLoadError(
            f"unsupported model_type {model_type!r} (supported: {', '.join(_ARCH_BY_MODEL_TYPE)})"
        )
    return _ARCH_BY_MODEL_TYPE[model_type]


def _sliding_window(hf_config: Any, arch: str) -> int | None:
    if arch == "LlamaForCausalLM":
        return None
    if arch == "Qwen2ForCausalLM" and not getattr(hf_config, "use_sliding_window", False):
        return None
    return getattr(hf_config, "sliding_window", None)


def _as_ids(value: int | list[int] | None) -> tuple[int, ...]:
    if value is None:
        return ()
    if isinstance(value, int):
        return (value,)
    return tuple(int(v) for v in value)
