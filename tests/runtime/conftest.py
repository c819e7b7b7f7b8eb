"""Session fixtures: small random-weight Hugging Face checkpoints (saved with ``save_pretrained``) plus the
in-memory transformers model each was saved from, for comparing our model against transformers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from tether.runtime.engine.models.presets import build_byte_level_hf_tokenizer, save_tiny_checkpoint

_COMMON: dict[str, Any] = dict(
    vocab_size=320,
    hidden_size=64,
    intermediate_size=160,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    rms_norm_eps=1e-6,
    initializer_range=0.1,
    bos_token_id=256,
    eos_token_id=257,
    attn_implementation="eager",
)

# name -> (transformers class name, extra config kwargs)
HF_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "llama": ("Llama", dict(rope_theta=10000.0)),
    "llama3_rope": (
        "Llama",
        dict(
            rope_theta=500000.0,
            rope_scaling=dict(
                rope_type="llama3",
                factor=8.0,
                low_freq_factor=1.0,
                high_freq_factor=4.0,
                original_max_position_embeddings=64,
            ),
        ),
    ),
    "linear_rope": ("Llama", dict(rope_theta=10000.0, rope_scaling=dict(rope_type="linear", factor=4.0))),
    "qwen2": ("Qwen2", dict(rope_theta=1000000.0, tie_word_embeddings=True)),
    "mistral": ("Mistral", dict(rope_theta=10000.0, sliding_window=None, head_dim=32)),
}


@dataclass(frozen=True)
class HFCheckpoint:
    name: str
    path: Path
    hf_model: Any  # the transformers model the checkpoint was saved from (float32, eager attention)


def build_hf_checkpoint(name: str, path: Path, seed: int = 0) -> HFCheckpoint:
    import transformers

    family, extra = HF_VARIANTS[name]
    config = getattr(transformers, f"{family}Config")(**_COMMON, **extra)
    torch.manual_seed(seed)
    model = getattr(transformers, f"{family}ForCausalLM")(config).float().eval()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for pname, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if pname.endswith("norm.weight"):
                param.copy_(1.0 + 0.1 * noise)  # not all ones, so a missed norm weight shows
            elif pname.endswith(".bias"):
                param.copy_(0.1 * noise)  # Qwen2's q/k/v biases, non-zero
    model.save_pretrained(path)
    build_byte_level_hf_tokenizer().save_pretrained(path)
    return HFCheckpoint(name=name, path=path, hf_model=model)


@pytest.fixture(scope="session", params=sorted(HF_VARIANTS))
def hf_checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> HFCheckpoint:
    return build_hf_checkpoint(request.param, tmp_path_factory.mktemp(f"hf_{request.param}"))


@pytest.fixture(scope="session")
def llama_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> HFCheckpoint:
    return build_hf_checkpoint("llama", tmp_path_factory.mktemp("hf_llama_errors"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny_ckpt"), seed=0)
