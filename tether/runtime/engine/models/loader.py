"""``load_model``: a preset (``tiny``), a named model (``smollm2``), a local GGUF file or a local Hugging Face
checkpoint dir. Nothing is ever downloaded; named models and GGUF files resolve through ``sources``.

A checkpoint dir holds ``config.json``, ``*.safetensors`` (optionally sharded with
``model.safetensors.index.json``) and tokenizer files. Weights are read by Hugging Face name straight into
parameters allocated on the target device in the target dtype.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tether.runtime.engine.errors import ModelLoadError
from tether.runtime.engine.models.config import ModelConfig
from tether.runtime.engine.models.llama import LlamaForCausalLM
from tether.runtime.engine.models.presets import PRESETS, build_preset
from tether.runtime.engine.models.sources import checkpoint_dir
from tether.runtime.engine.tokenizer import ByteTokenizer, HFTokenizer, Tokenizer

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json")
INDEX_FILE = "model.safetensors.index.json"


@dataclass(frozen=True)
class LoadedModel:
    """``name`` is the ``model`` argument as given (``"tiny"`` or the checkpoint path)."""

    model: LlamaForCausalLM
    config: ModelConfig
    tokenizer: Tokenizer
    name: str


def load_model(
    model: str,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    seed: int = 0,
) -> LoadedModel:
    """Load ``"tiny"`` (seeded random weights, byte tokenizer), a named model such as ``"smollm2"``, a local
    ``.gguf`` file (converted once and cached as safetensors) or a local checkpoint dir, in eval mode.

    dtype: the argument, else the checkpoint's ``dtype``/``torch_dtype``, else float32 on CPU and bfloat16 on
    CUDA. ``seed`` only matters for ``tiny``. The model is ready for inference (``prepare_for_inference``:
    oneDNN-prepacked linears on CPU). Raises ``ModelLoadError`` naming the path or tensor at fault.
    """
    device = torch.device(device)
    if model in PRESETS:
        net = build_preset(model, device, dtype or _device_default_dtype(device), seed)
        return LoadedModel(
            model=net.prepare_for_inference(),
            config=PRESETS[model],
            tokenizer=ByteTokenizer(),
            name=model,
        )
    path = checkpoint_dir(model)
    hf_config, config = read_model_config(path)
    dtype = dtype or _config_dtype(hf_config) or _device_default_dtype(device)
    net = _build_empty(config, device, dtype)
    load_safetensors(net, path)
    tokenizer = load_hf_tokenizer(path, extra_eos_ids=[*config.eos_token_ids, *_generation_eos_ids(path)])
    return LoadedModel(
        model=net.eval().prepare_for_inference(), config=config, tokenizer=tokenizer, name=model
    )


def load_safetensors(net: LlamaForCausalLM, path: Path) -> None:
    """Copy every parameter of ``net`` from the checkpoint by name (tied ``lm_head`` excepted); extra tensors
    in the checkpoint are ignored."""
    from safetensors import safe_open

    files = _tensor_files(path)
    handles: dict[Path, Any] = {}
    expected = dict(net.named_parameters())  # tied weights appear once, as model.embed_tokens.weight
    with torch.no_grad():
        for name, param in expected.items():
            file = files.get(name)
            if file is None:
                raise ModelLoadError(f"{path}: tensor {name!r} not found in the checkpoint")
            if file not in handles:
                if not file.is_file():
                    raise ModelLoadError(f"{file}: shard listed in {INDEX_FILE} (for {name!r}) is missing")
                handles[file] = safe_open(str(file), framework="pt", device="cpu")
            tensor = handles[file].get_tensor(name)
            if tuple(tensor.shape) != tuple(param.shape):
                raise ModelLoadError(
                    f"{file}: tensor {name!r} has shape {tuple(tensor.shape)}, expected {tuple(param.shape)}"
                )
            param.copy_(tensor)


def load_hf_tokenizer(path: Path, *, extra_eos_ids: list[int]) -> HFTokenizer:
    if not any((path / f).exists() for f in TOKENIZER_FILES):
        raise ModelLoadError(f"{path}: no tokenizer files (expected one of {', '.join(TOKENIZER_FILES)})")
    from transformers import AutoTokenizer

    try:
        hf_tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # transformers raises many types here
        raise ModelLoadError(f"{path}: cannot load the tokenizer: {exc}") from exc
    return HFTokenizer(hf_tokenizer, extra_eos_ids=extra_eos_ids)


def read_model_config(path: Path) -> tuple[Any, ModelConfig]:
    """The checkpoint's transformers config and our view of it; ``ModelLoadError`` naming ``config.json``."""
    hf_config = _read_hf_config(path)
    try:
        return hf_config, ModelConfig.from_hf(hf_config)
    except ModelLoadError as exc:
        raise ModelLoadError(f"{path / 'config.json'}: {exc}") from None


def _read_hf_config(path: Path) -> Any:
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path}: no config.json")
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # unknown model_type, malformed json, ...
        raise ModelLoadError(f"{path / 'config.json'}: cannot read the config: {exc}") from exc


def _build_empty(config: ModelConfig, device: torch.device, dtype: torch.dtype) -> LlamaForCausalLM:
    """Parameters allocated (uninitialised) directly on ``device`` in ``dtype``; no random init pass."""
    with torch.device("meta"):
        net = LlamaForCausalLM(config)
    net = net.to(dtype=dtype).to_empty(device=device)
    net.tie_weights()
    return net


def _tensor_files(path: Path) -> dict[str, Path]:
    """Tensor name -> the safetensors file holding it."""
    index = path / INDEX_FILE
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        return {name: path / file for name, file in weight_map.items()}
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise ModelLoadError(f"{path}: no *.safetensors files")
    from safetensors import safe_open

    names: dict[str, Path] = {}
    for file in files:
        with safe_open(str(file), framework="pt", device="cpu") as f:
            names.update(dict.fromkeys(f.keys(), file))
    return names


def _config_dtype(hf_config: Any) -> torch.dtype | None:
    value = getattr(hf_config, "dtype", None) or getattr(hf_config, "torch_dtype", None)
    if isinstance(value, str):
        value = getattr(torch, value, None)
    return value if isinstance(value, torch.dtype) else None


def _device_default_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def _generation_eos_ids(path: Path) -> list[int]:
    file = path / "generation_config.json"
    if not file.is_file():
        return []
    eos = json.loads(file.read_text()).get("eos_token_id")
    if eos is None:
        return []
    return [eos] if isinstance(eos, int) else list(eos)
