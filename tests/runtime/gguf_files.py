"""Writes small GGUF files the way llama.cpp's converter does: a random Hugging Face Llama / Qwen2 model's
tensors under GGUF names, Llama Q/K rows permuted, linear weights in one quantization type, a byte-level
``gpt2`` tokenizer with a ChatML template in the metadata.

Q4_K and Q6_K have no quantizer in the ``gguf`` package; their blocks are random bytes with small, finite
fp16 scales (valid blocks of arbitrary values: loaders must dequantize them identically).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from tether.runtime.engine.models.presets import bytes_to_unicode
from tether.runtime.engine.tokenizer import CHATML_TEMPLATE

SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")  # ids 259, 260, 261 (after 3 merged tokens)
BOS_ID, EOS_ID = 260, 261
CHAT_TEMPLATE = CHATML_TEMPLATE


def byte_vocab() -> tuple[list[str], list[int], list[str]]:
    """Tokens (256 byte symbols, a few merged pairs, the specials), their GGUF token types, the merges."""
    symbols = [bytes_to_unicode()[b] for b in range(256)]
    merges = ["Ġ t", "h e", "Ġt he"]
    tokens = symbols + ["Ġt", "he", "Ġthe"] + list(SPECIALS)
    types = [1] * (len(tokens) - len(SPECIALS)) + [3] * len(SPECIALS)  # 1 normal, 3 control
    return tokens, types, merges


def hf_model(family: str, seed: int = 0) -> Any:
    """A random float32 transformers model with GGUF-friendly sizes (rows of 256 for the K-quants)."""
    import transformers

    tokens, _, _ = byte_vocab()
    config = getattr(transformers, f"{family}Config")(
        vocab_size=len(tokens),
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        rms_norm_eps=1e-6,
        rope_theta=10000.0,
        tie_word_embeddings=family == "Qwen2",
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        attn_implementation="eager",
    )
    torch.manual_seed(seed)
    model = getattr(transformers, f"{family}ForCausalLM")(config).float().eval()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if name.endswith("norm.weight"):
                param.copy_(1.0 + 0.1 * noise)
            elif name.endswith(".bias"):
                param.copy_(0.1 * noise)
            else:
                param.copy_(0.05 * noise)
    return model


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's ``LlamaModel.permute`` (convert_hf_to_gguf.py)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def quantize(w: np.ndarray, qtype: Any, rng: np.random.Generator) -> np.ndarray:
    import gguf
    from gguf.quants import quantize as gguf_quantize

    T = gguf.GGMLQuantizationType
    if qtype == T.F32:
        return w.astype(np.float32)
    if qtype in (T.Q4_K, T.Q6_K):
        return random_kquant(w.shape, qtype, rng)
    return gguf_quantize(w.astype(np.float32), qtype)


def random_kquant(shape: tuple[int, ...], qtype: Any, rng: np.random.Generator) -> np.ndarray:
    """Random Q4_K / Q6_K blocks (256 values each) whose fp16 scales are small and finite."""
    import gguf
    from gguf.quants import quant_shape_to_byte_shape

    T = gguf.GGMLQuantizationType
    byte_shape = quant_shape_to_byte_shape(shape, qtype)
    block_bytes = gguf.GGML_QUANT_SIZES[qtype][1]
    data = rng.integers(0, 256, size=byte_shape, dtype=np.uint8)
    blocks = data.reshape(-1, block_bytes)
    scale = rng.uniform(1e-4, 2e-3, size=(blocks.shape[0], 2)).astype(np.float16).view(np.uint8)
    if qtype == T.Q4_K:  # d, dmin (fp16) first, then 12 bytes of 6-bit scales, then 128 nibble bytes
        blocks[:, 0:4] = scale
    else:  # Q6_K: ql[128] qh[64] scales[16] (int8) d (fp16) last
        blocks[:, -2:] = scale[:, 0:2]
    return blocks.reshape(byte_shape)


_GGUF_LAYER_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def gguf_name(hf_name: str) -> str:
    top = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    if hf_name in top:
        return top[hf_name]
    _, _, layer, rest = hf_name.split(".", 3)
    return f"blk.{layer}.{_GGUF_LAYER_NAMES[rest]}"


def write_gguf(path: Path, model: Any, qtype: Any, seed: int = 0) -> Path:
    """Write ``model`` (a transformers Llama / Qwen2) as a GGUF file with 2-D weights in ``qtype``."""
    import gguf

    cfg = model.config
    arch = {"llama": "llama", "qwen2": "qwen2"}[cfg.model_type]
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    writer.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    writer.add_vocab_size(cfg.vocab_size)
    tokens, types, merges = byte_vocab()
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(cfg.bos_token_id)
    writer.add_eos_token_id(cfg.eos_token_id)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        w = tensor.detach().numpy().astype(np.float32)
        if arch == "llama" and name.endswith("q_proj.weight"):
            w = permute(w, cfg.num_attention_heads)
        elif arch == "llama" and name.endswith("k_proj.weight"):
            w = permute(w, cfg.num_key_value_heads)
        data = quantize(w, qtype, rng) if w.ndim == 2 else w
        writer.add_tensor(gguf_name(name), data, raw_dtype=qtype if w.ndim == 2 else None)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
