"""GGUF files (llama.cpp's format) read with the ``gguf`` package and converted to a checkpoint directory.

``convert_gguf(path, out)`` writes what ``load_model`` reads from any local checkpoint::

    out/config.json             a transformers config of the architecture (Llama or Qwen2)
    out/generation_config.json  BOS / EOS from the GGUF metadata
    out/model.safetensors       every tensor dequantized to float32, under Hugging Face names
    out/tokenizer.json, ...     the tokenizer and chat template from the metadata (transformers' GGUF
                                tokenizer conversion)

Tensors are dequantized by the ``gguf`` package (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, the K-quants
Q2_K..Q6_K, and the IQ types it knows). llama.cpp's converter permutes the rows of a Llama's Q and K
projections (for its interleaved RoPE); they are permuted back here, so the weights are the Hugging Face ones.
Qwen2 files are not permuted. The directory is a plain Hugging Face checkpoint: ``transformers`` loads it too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from tether.runtime.engine.errors import ModelLoadError

ARCHITECTURES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}
PERMUTED_QK = frozenset({"llama"})  # llama.cpp's LlamaModel.permute; Qwen2Model does not permute

_GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_LAYER_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.bias": "self_attn.v_proj.bias",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
_LAYER_RE = re.compile(r"^blk\.(\d+)\.(.+)$")


@dataclass(frozen=True)
class GGUFHeader:
    """The architecture fields of a GGUF file's metadata, as a transformers config needs them."""

    arch: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    rope_scaling: dict[str, Any] | None
    max_position_embeddings: int
    tie_word_embeddings: bool
    bos_token_id: int | None
    eos_token_id: int | None
    eot_token_id: int | None

    def hf_config(self) -> Any:
        """A ``LlamaConfig`` / ``Qwen2Config`` describing the converted checkpoint. It names no dtype: the
        float32 tensors are a dequantization, not a training dtype, so loaders pick the device's default."""
        import transformers

        family = {"llama": "LlamaConfig", "qwen2": "Qwen2Config"}[self.arch]
        kwargs: dict[str, Any] = dict(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_kv_heads,
            max_position_embeddings=self.max_position_embeddings,
            rms_norm_eps=self.rms_norm_eps,
            rope_theta=self.rope_theta,
            rope_scaling=self.rope_scaling,
            tie_word_embeddings=self.tie_word_embeddings,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            architectures=[ARCHITECTURES[self.arch]],
        )
        if self.arch == "llama":
            kwargs["head_dim"] = self.head_dim
        return getattr(transformers, family)(**kwargs)


@dataclass(frozen=True)
class _Metadata:
    """A GGUF file's metadata fields, read as typed values; each reader raises ``ModelLoadError`` naming the
    file and the key at fault. ``default`` (``...``: none) stands for a missing key and is checked too."""

    fields: Any
    path: Path

    def get(self, key: str, default: Any = ...) -> Any:
        field = self.fields.get(key)
        if field is None:
            if default is ...:
                raise ModelLoadError(f"{self.path}: GGUF metadata has no {key!r}")
            return default
        try:
            return field.contents()
        except (ValueError, IndexError) as exc:  # a string that is not UTF-8, an array cut short
            raise ModelLoadError(f"{self.path}: GGUF metadata {key!r} is unreadable: {exc}") from None

    def count(self, key: str, default: Any = ..., minimum: int = 1) -> int:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ModelLoadError(
                f"{self.path}: GGUF metadata {key!r} must be an integer >= {minimum}, got {value!r}"
            )
        return value

    def real(self, key: str, default: Any = ...) -> float:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ModelLoadError(f"{self.path}: GGUF metadata {key!r} must be a number, got {value!r}")
        return float(value)

    def token(self, key: str) -> int | None:
        """A token id (``>= 0``), or ``None`` where the key is missing."""
        return None if self.get(key, None) is None else self.count(key, minimum=0)


def read_header(reader: Any, path: Path) -> GGUFHeader:
    """Raises ``ModelLoadError`` naming the file and the key at fault (missing, mistyped or out of range)."""
    meta = _Metadata(reader.fields, path)
    arch = meta.get("general.architecture")
    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise ModelLoadError(
            f"{path}: GGUF architecture {arch!r} is not supported (supported: {', '.join(ARCHITECTURES)})"
        )
    hidden = meta.count(f"{arch}.embedding_length")
    heads = meta.count(f"{arch}.attention.head_count")
    kv_heads = meta.count(f"{arch}.attention.head_count_kv", heads)
    if heads % kv_heads:
        raise ModelLoadError(f"{path}: head_count {heads} is not a multiple of head_count_kv {kv_heads}")
    head_dim = meta.count(f"{arch}.attention.key_length", max(1, hidden // heads))
    rotary = meta.count(f"{arch}.rope.dimension_count", head_dim)
    if rotary != head_dim:
        raise ModelLoadError(f"{path}: partial rotary ({rotary} of {head_dim} dims) is not supported")
    names = {t.name for t in reader.tensors}
    if "rope_freqs.weight" in names:
        raise ModelLoadError(f"{path}: per-frequency rope factors (rope_freqs.weight) are not supported")
    layers = meta.count(f"{arch}.block_count")
    if layers > len(names):
        raise ModelLoadError(
            f"{path}: GGUF metadata gives {layers} blocks but the file has {len(names)} tensors"
        )
    tokens = meta.fields.get("tokenizer.ggml.tokens")
    vocab = meta.count(f"{arch}.vocab_size", len(tokens.data) if tokens is not None else 0, minimum=0)
    if vocab <= 0:
        raise ModelLoadError(f"{path}: GGUF metadata gives no vocabulary size")
    return GGUFHeader(
        arch=arch,
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=meta.count(f"{arch}.feed_forward_length"),
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        rms_norm_eps=meta.real(f"{arch}.attention.layer_norm_rms_epsilon"),
        rope_theta=meta.real(f"{arch}.rope.freq_base", 10000.0),
        rope_scaling=_rope_scaling(meta, arch),
        max_position_embeddings=meta.count(f"{arch}.context_length"),
        tie_word_embeddings="output.weight" not in names,
        bos_token_id=meta.token("tokenizer.ggml.bos_token_id"),
        eos_token_id=meta.token("tokenizer.ggml.eos_token_id"),
        eot_token_id=meta.token("tokenizer.ggml.eot_token_id"),
    )


def _rope_scaling(meta: _Metadata, arch: str) -> dict[str, Any] | None:
    kind = meta.get(f"{arch}.rope.scaling.type", "none")
    if kind in ("none", ""):
        return None
    if kind == "linear":
        return {"rope_type": "linear", "factor": meta.real(f"{arch}.rope.scaling.factor")}
    raise ModelLoadError(f"{meta.path}: rope scaling {kind!r} is not supported (supported: none, linear)")


def hf_tensor_name(gguf_name: str) -> str | None:
    """The Hugging Face name of a GGUF tensor; ``None`` for tensors the model does not use."""
    if gguf_name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[gguf_name]
    m = _LAYER_RE.match(gguf_name)
    if m and m.group(2) in _LAYER_NAMES:
        return f"model.layers.{m.group(1)}.{_LAYER_NAMES[m.group(2)]}"
    return None


def unpermute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of llama.cpp's ``permute``: ``w [n_head * D, ...]`` with each head's rows ordered
    (pairs, 2) back to Hugging Face's (2 halves, D/2)."""
    shape = w.shape
    return w.reshape(n_head, shape[0] // n_head // 2, 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def read_tensors(
    reader: Any, header: GGUFHeader, path: Path, progress: TextIO | None = None
) -> dict[str, np.ndarray]:
    """Every used tensor, dequantized to float32 ``[out, in]`` (numpy), under its Hugging Face name.
    ``progress``: where a tqdm bar of the GGUF bytes read (and their rate) goes; ``None``: no bar."""
    from gguf.quants import dequantize
    from tqdm import tqdm

    out: dict[str, np.ndarray] = {}
    total = sum(int(t.n_bytes) for t in reader.tensors)
    bar = tqdm(
        total=total,
        desc=f"converting {path.name}",
        unit="B",
        unit_scale=True,
        file=progress,
        disable=progress is None,
        dynamic_ncols=True,
    )
    with bar:
        for t in reader.tensors:
            bar.update(int(t.n_bytes))
            name = hf_tensor_name(t.name)
            if name is not None:
                out[name] = _tensor(t, name, header, path, dequantize)
    if header.tie_word_embeddings:
        out.pop("lm_head.weight", None)
    return out


def _tensor(t: Any, name: str, header: GGUFHeader, path: Path, dequantize: Any) -> np.ndarray:
    """One GGUF tensor, dequantized to float32 and laid out as Hugging Face's ``name``."""
    try:
        w = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
    except NotImplementedError as exc:
        raise ModelLoadError(
            f"{path}: tensor {t.name!r} has type {t.tensor_type.name}, which cannot be dequantized"
        ) from exc
    shape = tuple(int(d) for d in reversed(t.shape))  # GGUF lists dims innermost first
    try:
        w = w.reshape(shape)
        if header.arch in PERMUTED_QK and name.endswith(("q_proj.weight", "q_proj.bias")):
            w = unpermute_qk(w, header.num_heads)
        elif header.arch in PERMUTED_QK and name.endswith(("k_proj.weight", "k_proj.bias")):
            w = unpermute_qk(w, header.num_kv_heads)
    except ValueError as exc:  # data and shape disagree, or rows not divisible by the heads
        raise ModelLoadError(f"{path}: tensor {t.name!r} of shape {shape}: {exc}") from None
    return np.ascontiguousarray(w)


def read_gguf(path: Path, progress: TextIO | None = None) -> tuple[GGUFHeader, dict[str, np.ndarray]]:
    """The header and every tensor the model needs (float32, Hugging Face names); ``ModelLoadError`` naming
    ``path`` for a file that is not GGUF, is truncated, or lacks or mistypes what a Llama / Qwen2 needs.
    ``progress``: where the bar of the tensors read goes (``read_tensors``)."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as exc:  # noqa: BLE001 - the gguf package raises ValueError, struct.error, ...
        raise ModelLoadError(f"{path}: not a readable GGUF file: {exc}") from exc
    header = read_header(reader, path)
    tensors = read_tensors(reader, header, path, progress)
    missing = _expected_names(header) - tensors.keys()
    if missing:
        raise ModelLoadError(f"{path}: GGUF file lacks tensors for {sorted(missing)[:3]}")
    return header, tensors


def convert_gguf(path: Path, out: Path, progress: TextIO | None = None) -> None:
    """Write the checkpoint directory ``out`` (see the module docstring) from the GGUF file ``path``;
    ``progress``: where a bar of the tensors read, with its rate, goes (``None``: none)."""
    from safetensors.numpy import save_file

    header, tensors = read_gguf(path, progress)
    out.mkdir(parents=True, exist_ok=True)
    header.hf_config().save_pretrained(out)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    eos = [i for i in (header.eos_token_id, header.eot_token_id) if i is not None]
    (out / "generation_config.json").write_text(
        json.dumps({"bos_token_id": header.bos_token_id, "eos_token_id": list(dict.fromkeys(eos))})
    )
    _save_tokenizer(path, out)


def _expected_names(header: GGUFHeader) -> set[str]:
    names = {"model.embed_tokens.weight", "model.norm.weight"}
    if not header.tie_word_embeddings:
        names.add("lm_head.weight")
    per_layer = [v for k, v in _LAYER_NAMES.items() if k.endswith(".weight")]
    if header.arch == "qwen2":
        per_layer += [v for k, v in _LAYER_NAMES.items() if k.endswith(".bias")]
    return names | {f"model.layers.{i}.{n}" for i in range(header.num_layers) for n in per_layer}


def _save_tokenizer(path: Path, out: Path) -> None:
    """The tokenizer and chat template from the GGUF metadata, saved as Hugging Face tokenizer files."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except Exception as exc:  # noqa: BLE001 - transformers raises many types here
        raise ModelLoadError(f"{path}: cannot build the tokenizer from the GGUF metadata: {exc}") from exc
    tok.save_pretrained(out)
