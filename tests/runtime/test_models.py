"""Model, RoPE, loader and tokenizer tests: CPU, float32, compared against transformers."""

from __future__ import annotations

import json
import math
import pickle
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from tests.runtime.conftest import HFCheckpoint
from tether.kernels.torch_ops import dense_attention
from tether.runtime.engine.errors import EngineError, InvalidRequestError, ModelLoadError
from tether.runtime.engine.models.config import TINY_CONFIG, ModelConfig, RopeConfig
from tether.runtime.engine.models.llama import LlamaForCausalLM
from tether.runtime.engine.models.loader import load_model
from tether.runtime.engine.models.presets import build_tiny_model
from tether.runtime.engine.models.rope import RotaryEmbedding, inv_frequencies
from tether.runtime.engine.tokenizer import ByteTokenizer, HFTokenizer, IncrementalDetokenizer, Tokenizer

TEXT = "Tether keeps KV warm while tools run. héllo wörld ✓"


class DenseKV:
    """A single-sequence causal ``AttentionFn``: appends each layer's k/v and attends over all of it."""

    def __init__(self) -> None:
        self.k: dict[int, torch.Tensor] = {}
        self.v: dict[int, torch.Tensor] = {}

    def __call__(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        self.k[layer] = torch.cat([self.k[layer], k]) if layer in self.k else k
        self.v[layer] = torch.cat([self.v[layer], v]) if layer in self.v else v
        scale = 1.0 / math.sqrt(q.shape[-1])
        o, _ = dense_attention(q, self.k[layer], self.v[layer], causal=True, sm_scale=scale)
        return o


def our_logits(
    model: LlamaForCausalLM, ids: torch.Tensor, positions: torch.Tensor, chunks: list[int]
) -> torch.Tensor:
    """Run ``ids`` through ``model`` in consecutive chunks of the given sizes, sharing one KV store."""
    attn, out, start = DenseKV(), [], 0
    with torch.inference_mode():
        for size in chunks:
            sl = slice(start, start + size)
            out.append(model.compute_logits(model(ids[sl], positions[sl], attn)))
            start += size
    assert start == ids.numel()
    return torch.cat(out)  # (T, V)


def hf_logits(hf_model: Any, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return hf_model(ids[None], position_ids=positions[None]).logits[0].float()  # (T, V)


# --- model vs transformers ---------------------------------------------------------------------------------


def test_config_from_checkpoint(hf_checkpoint: HFCheckpoint) -> None:
    cfg = load_model(str(hf_checkpoint.path)).config
    hf = hf_checkpoint.hf_model.config
    assert (cfg.vocab_size, cfg.hidden_size, cfg.num_layers) == (320, 64, 2)
    assert (cfg.num_heads, cfg.num_kv_heads) == (4, 2)
    assert cfg.head_dim == (32 if hf_checkpoint.name == "mistral" else 16)
    assert cfg.attention_bias == (hf_checkpoint.name == "qwen2")
    assert cfg.tie_word_embeddings == hf.tie_word_embeddings
    assert cfg.eos_token_ids == (257,) and cfg.bos_token_id == 256
    assert cfg.rope.theta == hf.rope_parameters["rope_theta"]
    assert cfg.rope.scaling_type == hf.rope_parameters["rope_type"]


@pytest.mark.parametrize("start", [0, 150])
def test_logits_match_transformers(hf_checkpoint: HFCheckpoint, start: int) -> None:
    loaded = load_model(str(hf_checkpoint.path))
    ids = torch.tensor(loaded.tokenizer.encode(TEXT))
    positions = torch.arange(start, start + ids.numel())
    expected = hf_logits(hf_checkpoint.hf_model, ids, positions)
    got = our_logits(loaded.model, ids, positions, [ids.numel()])
    assert got.dtype == torch.float32 and got.shape == expected.shape
    assert (got - expected).abs().max().item() < 1e-4


def test_chunked_prefill_and_decode_match_transformers(hf_checkpoint: HFCheckpoint) -> None:
    loaded = load_model(str(hf_checkpoint.path))
    ids = torch.tensor(loaded.tokenizer.encode(TEXT))
    positions = torch.arange(ids.numel())
    expected = hf_logits(hf_checkpoint.hf_model, ids, positions)
    chunks = [11, 7] + [1] * (ids.numel() - 18)
    got = our_logits(loaded.model, ids, positions, chunks)
    assert (got - expected).abs().max().item() < 1e-4


def test_state_dict_names_equal_transformers(hf_checkpoint: HFCheckpoint) -> None:
    ours = load_model(str(hf_checkpoint.path)).model.state_dict()
    theirs = hf_checkpoint.hf_model.state_dict()
    assert set(ours) == set(theirs)
    for name, tensor in theirs.items():
        assert torch.equal(ours[name], tensor), name


def test_tied_lm_head_shares_storage(hf_checkpoint: HFCheckpoint) -> None:
    model = load_model(str(hf_checkpoint.path)).model
    tied = model.lm_head.weight is model.model.embed_tokens.weight
    assert tied == hf_checkpoint.hf_model.config.tie_word_embeddings


# --- RoPE ------------------------------------------------------------------------------------------------


def test_rope_tables_equal_transformers_exactly(hf_checkpoint: HFCheckpoint) -> None:
    hf_rotary = hf_checkpoint.hf_model.model.rotary_emb
    cfg = ModelConfig.from_hf(hf_checkpoint.hf_model.config)
    assert torch.equal(inv_frequencies(cfg.rope, cfg.head_dim), hf_rotary.inv_freq)
    rope = RotaryEmbedding(cfg.rope, cfg.head_dim, cfg.max_position_embeddings)
    positions = torch.tensor([0, 5, 3, 200, 63, 64, 255, 1])
    cos, sin = rope.cos_sin(positions)
    hf_cos, hf_sin = hf_rotary(torch.zeros(1, dtype=torch.float32), positions[None])
    assert torch.equal(cos, hf_cos[0]) and torch.equal(sin, hf_sin[0])
    fresh = positions.float()[:, None] * inv_frequencies(cfg.rope, cfg.head_dim)[None, :]
    assert torch.equal(cos, torch.cat([fresh, fresh], -1).cos())


def test_rope_forward_rotates_pairs_half_apart() -> None:
    rope = RotaryEmbedding(RopeConfig(theta=10000.0), head_dim=4, max_positions=8)
    q = torch.tensor([[[1.0, 0.0, 0.0, 0.0]]])  # (T=1, H=1, D=4)
    q0, _ = rope(torch.tensor([0]), q, q)
    assert torch.equal(q0, q)
    q1, _ = rope(torch.tensor([1]), q, q)
    assert torch.allclose(q1[0, 0], torch.tensor([math.cos(1.0), 0.0, math.sin(1.0), 0.0]))


def hf4_config(**overrides: Any) -> SimpleNamespace:
    """A transformers-4.x-style config: ``rope_theta`` plus ``rope_scaling``, no ``rope_parameters``."""
    fields: dict[str, Any] = dict(
        architectures=["LlamaForCausalLM"], vocab_size=100, hidden_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=None, intermediate_size=128, rms_norm_eps=1e-5,
        max_position_embeddings=2048, tie_word_embeddings=True, bos_token_id=1, eos_token_id=[2, 3],
        rope_theta=500000.0, rope_scaling=None,
    )  # fmt: skip
    return SimpleNamespace(**{**fields, **overrides})


def test_from_hf_reads_transformers4_style_configs() -> None:
    linear = ModelConfig.from_hf(hf4_config(rope_scaling={"type": "linear", "factor": 2.0}))
    assert linear.rope == RopeConfig(theta=500000.0, scaling_type="linear", factor=2.0)
    assert (linear.head_dim, linear.num_kv_heads, linear.eos_token_ids) == (16, 4, (2, 3))
    llama3_scaling = dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0)
    llama3 = ModelConfig.from_hf(
        hf4_config(rope_scaling={**llama3_scaling, "original_max_position_embeddings": 8192})
    )
    assert llama3.rope.scaling_type == "llama3" and llama3.rope.original_max_position_embeddings == 8192
    plain = ModelConfig.from_hf(hf4_config(eos_token_id=2))
    assert plain.rope.scaling_type == "default" and plain.eos_token_ids == (2,)
    qwen = ModelConfig.from_hf(hf4_config(architectures=["Qwen2ForCausalLM"]))
    assert qwen.attention_bias and not qwen.o_proj_bias
    llama_bias = ModelConfig.from_hf(hf4_config(attention_bias=True))
    assert llama_bias.attention_bias and llama_bias.o_proj_bias


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "yarn"),
        ({"architectures": ["GPT2LMHeadModel"]}, "GPT2LMHeadModel"),
        ({"architectures": None, "model_type": "gpt2"}, "gpt2"),
    ],
)
def test_from_hf_rejects_unsupported(override: dict[str, Any], named: str) -> None:
    with pytest.raises(ModelLoadError, match=named):
        ModelConfig.from_hf(hf4_config(**override))


# --- tiny preset -----------------------------------------------------------------------------------------


def test_tiny_preset_is_deterministic() -> None:
    a, b, c = (
        build_tiny_model(0).state_dict(),
        build_tiny_model(0).state_dict(),
        build_tiny_model(1).state_dict(),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(
        a["model.layers.0.self_attn.q_proj.weight"], c["model.layers.0.self_attn.q_proj.weight"]
    )
    loaded = load_model("tiny")
    assert loaded.config == TINY_CONFIG and loaded.name == "tiny"
    assert isinstance(loaded.tokenizer, ByteTokenizer)
    assert not loaded.model.training
    assert sum(p.numel() for p in loaded.model.parameters()) == sum(t.numel() for t in a.values())


def test_tiny_checkpoint_round_trips_to_identical_logits(tiny_checkpoint: Path) -> None:
    preset, saved = load_model("tiny"), load_model(str(tiny_checkpoint))
    assert saved.config == TINY_CONFIG
    ids = torch.tensor(preset.tokenizer.encode(TEXT))
    assert saved.tokenizer.encode(TEXT) == ids.tolist()
    positions = torch.arange(ids.numel())
    assert torch.equal(
        our_logits(saved.model, ids, positions, [ids.numel()]),
        our_logits(preset.model, ids, positions, [ids.numel()]),
    )


def test_sharded_checkpoint_loads_by_index(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    shutil.copytree(tiny_checkpoint, tmp_path / "ckpt")
    ckpt = tmp_path / "ckpt"
    tensors = load_file(ckpt / "model.safetensors")
    (ckpt / "model.safetensors").unlink()
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    weight_map = {}
    for file, shard_names in shards.items():
        save_file({n: tensors[n] for n in shard_names}, ckpt / file, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard_names, file))
    (ckpt / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    loaded = load_model(str(ckpt)).model.state_dict()
    assert all(torch.equal(loaded[n], tensors[n]) for n in names)


def test_dtype_argument_and_checkpoint_dtype(tiny_checkpoint: Path) -> None:
    assert load_model("tiny", dtype=torch.bfloat16).model.lm_head.weight.dtype == torch.bfloat16
    assert load_model(str(tiny_checkpoint)).model.lm_head.weight.dtype == torch.float32
    model = load_model(str(tiny_checkpoint), dtype=torch.bfloat16).model
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    logits = model.compute_logits(model(torch.tensor([256, 65]), torch.arange(2), DenseKV()))
    assert logits.dtype == torch.float32 and logits.shape == (2, 384)


# --- loader errors ---------------------------------------------------------------------------------------


def test_missing_dir_raises(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ModelLoadError, match="nope"):
        load_model(str(missing))


def test_missing_config_raises(llama_checkpoint: HFCheckpoint, tmp_path: Path) -> None:
    ckpt = shutil.copytree(llama_checkpoint.path, tmp_path / "no_config")
    (ckpt / "config.json").unlink()
    with pytest.raises(ModelLoadError, match="no_config.*config.json"):
        load_model(str(ckpt))


def test_missing_tensor_raises(llama_checkpoint: HFCheckpoint, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    ckpt = shutil.copytree(llama_checkpoint.path, tmp_path / "no_tensor")
    tensors = load_file(ckpt / "model.safetensors")
    del tensors["model.layers.1.mlp.up_proj.weight"]
    save_file(tensors, ckpt / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match=r"no_tensor.*model\.layers\.1\.mlp\.up_proj\.weight"):
        load_model(str(ckpt))


def test_unsupported_architecture_raises(llama_checkpoint: HFCheckpoint, tmp_path: Path) -> None:
    ckpt = shutil.copytree(llama_checkpoint.path, tmp_path / "arch")
    config = json.loads((ckpt / "config.json").read_text())
    config["architectures"] = ["LlamaForSequenceClassification"]
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="LlamaForSequenceClassification"):
        load_model(str(ckpt))


def test_missing_tokenizer_raises(llama_checkpoint: HFCheckpoint, tmp_path: Path) -> None:
    ckpt = shutil.copytree(llama_checkpoint.path, tmp_path / "no_tok")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (ckpt / name).unlink()
    with pytest.raises(ModelLoadError, match="no_tok.*tokenizer"):
        load_model(str(ckpt))


def test_errors_are_typed() -> None:
    err = InvalidRequestError("req-7", "max_tokens", "must be positive")
    assert isinstance(err, EngineError) and isinstance(err, ValueError)
    assert (err.request_id, err.field) == ("req-7", "max_tokens")
    assert "req-7" in str(err) and "max_tokens" in str(err)
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.request_id, clone.field, str(clone)) == ("req-7", "max_tokens", str(err))
    assert issubclass(ModelLoadError, EngineError)


# --- tokenizers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["hello, world", "héllo wörld ✓ 日本語 🙂", ""])
def test_byte_tokenizer_round_trips(text: str) -> None:
    tok = ByteTokenizer()
    ids = tok.encode(text)
    assert ids[0] == tok.bos_token_id == 256
    assert ids[1:] == list(text.encode("utf-8"))
    assert tok.decode(ids) == text
    assert tok.decode(ids, skip_special_tokens=False) == "<|bos|>" + text


def test_byte_tokenizer_specials() -> None:
    tok = ByteTokenizer()
    assert isinstance(tok, Tokenizer)
    assert tok.encode("a<|im_end|>b") == [256, 97, 260, 98]
    assert tok.encode("<|bos|>x") == [256, 120]  # no second BOS
    assert tok.eos_token_ids == (257, 260) and tok.vocab_size == 384
    assert tok.decode([104, 105, 257, 300]) == "hi"
    assert tok.decode([104, 257], skip_special_tokens=False) == "h<|eos|>"
    assert tok.decode([0xF0, 0x9F]) == "\ufffd"
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}])
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert tok.encode(prompt)[:2] == [256, 259]


def test_incremental_detokenizer_holds_split_emoji() -> None:
    tok = ByteTokenizer()
    detok = IncrementalDetokenizer(tok)
    ids = tok.encode("a🙂b")[1:]  # a, 4 emoji bytes, b
    assert [detok.push(i) for i in ids] == ["a", "", "", "", "🙂", "b"]
    assert detok.flush() == ""
    partial = IncrementalDetokenizer(tok)
    assert [partial.push(i) for i in [104, 0xF0, 0x9F]] == ["h", "", ""]
    assert partial.flush() == "\ufffd"


def test_incremental_detokenizer_matches_full_decode(tiny_checkpoint: Path) -> None:
    tok = load_model(str(tiny_checkpoint)).tokenizer
    ids = tok.encode(TEXT + " 🙂<|im_end|>")
    detok = IncrementalDetokenizer(tok)
    streamed = "".join(detok.push(i) for i in ids) + detok.flush()
    assert streamed == tok.decode(ids) == TEXT + " 🙂"


def test_hf_tokenizer_of_checkpoint(tiny_checkpoint: Path) -> None:
    tok = load_model(str(tiny_checkpoint)).tokenizer
    assert isinstance(tok, HFTokenizer) and isinstance(tok, Tokenizer)
    byte_tok = ByteTokenizer()
    for text in ["hello, world", "héllo wörld ✓ 🙂", "a<|im_end|>b", "  two  spaces "]:
        ids = tok.encode(text)
        assert ids == byte_tok.encode(text)
        assert tok.decode(ids) == byte_tok.decode(ids) == text.replace("<|im_end|>", "")
    assert (tok.bos_token_id, tok.eos_token_ids, tok.vocab_size) == (256, (257, 260), 384)
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert tok.apply_chat_template(messages) == byte_tok.apply_chat_template(messages)
    assert tok.apply_chat_template(messages, add_generation_prompt=False) == byte_tok.apply_chat_template(
        messages, add_generation_prompt=False
    )
    assert tok.encode("<|bos|>x") == [256, 120]


def test_llama3_8b_shape_preset_has_llama3_8b_parameter_count() -> None:
    from tether.runtime.engine.models.config import LLAMA3_8B_SHAPE_CONFIG
    from tether.runtime.engine.models.llama import LlamaForCausalLM

    with torch.device("meta"):
        model = LlamaForCausalLM(LLAMA3_8B_SHAPE_CONFIG)
    assert sum(p.numel() for p in model.parameters()) == 8_030_261_248
