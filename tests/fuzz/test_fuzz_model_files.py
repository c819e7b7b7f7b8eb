"""Model files: truncated, bit-flipped or re-typed GGUF files and random or mutated ``config.json`` give a
``ModelLoadError`` naming the file, never a raw ``struct.error`` / ``IndexError`` / ``KeyError``."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.fuzz.counts import FUZZ, SCALE, tried
from tether.runtime.engine.errors import ModelLoadError
from tether.runtime.engine.models.gguf import read_gguf
from tether.runtime.engine.models.loader import read_model_config

pytestmark = pytest.mark.slow  # a hypothesis hunt: hundreds of generated inputs per target

gguf = pytest.importorskip("gguf")

HIDDEN, HEADS, LAYERS, VOCAB = 8, 2, 1, 16
METADATA: dict[str, Any] = {
    "llama.block_count": LAYERS,
    "llama.context_length": 64,
    "llama.embedding_length": HIDDEN,
    "llama.feed_forward_length": 16,
    "llama.attention.head_count": HEADS,
    "llama.attention.head_count_kv": HEADS,
    "llama.attention.layer_norm_rms_epsilon": 1e-6,
    "llama.rope.freq_base": 10000.0,
    "llama.vocab_size": VOCAB,
    "tokenizer.ggml.bos_token_id": 1,
    "tokenizer.ggml.eos_token_id": 2,
}
SHAPES = {
    "token_embd.weight": (VOCAB, HIDDEN),
    "output_norm.weight": (HIDDEN,),
    "output.weight": (VOCAB, HIDDEN),
    "blk.0.attn_norm.weight": (HIDDEN,),
    "blk.0.ffn_norm.weight": (HIDDEN,),
    "blk.0.attn_q.weight": (HIDDEN, HIDDEN),
    "blk.0.attn_k.weight": (HIDDEN, HIDDEN),
    "blk.0.attn_v.weight": (HIDDEN, HIDDEN),
    "blk.0.attn_output.weight": (HIDDEN, HIDDEN),
    "blk.0.ffn_gate.weight": (16, HIDDEN),
    "blk.0.ffn_up.weight": (16, HIDDEN),
    "blk.0.ffn_down.weight": (HIDDEN, 16),
}


def _add(writer: Any, key: str, value: Any) -> None:
    if isinstance(value, bool):
        writer.add_bool(key, value)
    elif isinstance(value, int):
        writer.add_int64(key, value) if value < 0 or value >= 2**32 else writer.add_uint32(key, value)
    elif isinstance(value, float):
        writer.add_float32(key, value)
    elif isinstance(value, str):
        writer.add_string(key, value)
    else:
        writer.add_array(key, value)


def write_gguf(path: Path, metadata: dict[str, Any], arch: str = "llama") -> bytes:
    writer = gguf.GGUFWriter(str(path), arch)
    for key, value in metadata.items():
        _add(writer, key, value)
    rng = np.random.default_rng(0)
    for name, shape in SHAPES.items():
        writer.add_tensor(name, rng.standard_normal(shape).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


@pytest.fixture(scope="module")
def good_gguf(workdir: Path) -> bytes:
    data = write_gguf(workdir / "good.gguf", METADATA)
    header, tensors = read_gguf(workdir / "good.gguf")
    assert header.num_heads == HEADS and tensors["model.embed_tokens.weight"].shape == (VOCAB, HIDDEN)
    return data


def _check_gguf(path: Path) -> None:
    tried("gguf")
    try:
        read_gguf(path)
    except ModelLoadError as exc:
        assert path.name in str(exc), exc


@settings(FUZZ, max_examples=120 * SCALE)
@given(st.data())
def test_truncated_and_flipped_gguf(workdir: Path, good_gguf: bytes, data: st.DataObject) -> None:
    raw = bytearray(good_gguf)
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    for _ in range(data.draw(st.integers(0, 4))):
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    path = workdir / "mutated.gguf"
    path.write_bytes(bytes(raw))
    _check_gguf(path)


def test_gguf_string_that_is_not_utf8(workdir: Path, good_gguf: bytes) -> None:
    """Found by the fuzzer: a flipped byte in a metadata string was a raw UnicodeDecodeError."""
    key = good_gguf.index(b"general.architecture")
    at = good_gguf.index(b"llama", key)
    path = workdir / "utf8.gguf"
    path.write_bytes(good_gguf[:at] + b"\x80" + good_gguf[at + 1 :])
    with pytest.raises(ModelLoadError, match="utf8.gguf.*general.architecture"):
        read_gguf(path)


@settings(FUZZ, max_examples=40 * SCALE)
@given(st.binary(max_size=64))
def test_random_bytes_gguf(workdir: Path, raw: bytes) -> None:
    path = workdir / "random.gguf"
    path.write_bytes(b"GGUF" + raw)
    _check_gguf(path)


metadata_values = st.one_of(
    st.integers(-(2**40), 2**40), st.sampled_from([0, 1, 3, -1]), st.floats(allow_nan=True, width=32),
    st.text(max_size=5), st.booleans(), st.lists(st.integers(0, 9), min_size=1, max_size=3),
)  # fmt: skip


@settings(FUZZ, max_examples=80 * SCALE)
@given(
    st.dictionaries(st.sampled_from(sorted(METADATA)), metadata_values, max_size=3),
    st.sets(st.sampled_from(sorted(METADATA))),
)
@example({"llama.attention.head_count": 0}, set())
@example({"llama.embedding_length": "wide"}, set())
@example({"llama.attention.head_count_kv": 0}, set())
@example({"llama.block_count": 2**40}, set())
@example({}, {"llama.block_count"})
def test_mutated_gguf_metadata(workdir: Path, changed: dict[str, Any], dropped: set[str]) -> None:
    metadata = {k: v for k, v in {**METADATA, **changed}.items() if k not in dropped}
    path = workdir / "metadata.gguf"
    write_gguf(path, metadata)
    _check_gguf(path)


CONFIG: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": VOCAB,
    "hidden_size": HIDDEN,
    "intermediate_size": 16,
    "num_hidden_layers": LAYERS,
    "num_attention_heads": HEADS,
    "num_key_value_heads": HEADS,
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "eos_token_id": 2,
}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**40) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
rope_values = st.fixed_dictionaries(
    {}, optional={"rope_type": st.sampled_from(["llama3", "linear", "yarn", 3]), "factor": json_values,
                  "original_max_position_embeddings": json_values, "partial_rotary_factor": json_values}
)  # fmt: skip


def _check_config(workdir: Path, raw: bytes) -> None:
    tried("config_json")
    ckpt = workdir / "ckpt"
    ckpt.mkdir(exist_ok=True)
    (ckpt / "config.json").write_bytes(raw)
    try:
        read_model_config(ckpt)
    except ModelLoadError as exc:
        assert "config.json" in str(exc), exc


@settings(FUZZ, max_examples=60 * SCALE)
@given(st.binary(max_size=40) | st.builds(lambda n: json.dumps(CONFIG).encode()[:n], st.integers(0, 400)))
def test_random_and_truncated_config(workdir: Path, raw: bytes) -> None:
    _check_config(workdir, raw)


CONFIG_KEYS = [*sorted(CONFIG), "head_dim", "rope_parameters", "mlp_bias"]


@settings(FUZZ, max_examples=120 * SCALE)
@given(
    st.dictionaries(st.sampled_from(CONFIG_KEYS), json_values, max_size=3),
    st.sets(st.sampled_from(sorted(CONFIG))),
    rope_values,
)  # fmt: skip
@example({"num_attention_heads": 0}, set(), {})
@example({"hidden_size": "wide"}, set(), {})
@example({"num_key_value_heads": 3}, set(), {})
@example({"eos_token_id": ["x"]}, set(), {})
@example({}, set(), {"rope_type": "llama3", "factor": "big"})
def test_mutated_config(
    workdir: Path, changed: dict[str, Any], dropped: set[str], rope: dict[str, Any]
) -> None:
    config = {k: v for k, v in {**CONFIG, **changed}.items() if k not in dropped}
    if rope:
        config["rope_scaling"] = rope
    _check_config(workdir, json.dumps(config).encode())


def test_the_base_config_reads(workdir: Path) -> None:
    ckpt = workdir / "base"
    ckpt.mkdir(exist_ok=True)
    (ckpt / "config.json").write_text(json.dumps(CONFIG))
    _, config = read_model_config(ckpt)
    assert (config.num_heads, config.head_dim, config.num_layers) == (HEADS, HIDDEN // HEADS, LAYERS)
