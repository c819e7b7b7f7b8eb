"""The ``tiny`` preset: a seeded random-weight Llama with the byte tokenizer, and its export as a real Hugging
Face checkpoint directory (config.json, model.safetensors, tokenizer files) for loader tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from tether.runtime.engine.models.config import LLAMA3_8B_SHAPE_CONFIG, TINY_CONFIG, ModelConfig
from tether.runtime.engine.models.llama import LlamaForCausalLM
from tether.runtime.engine.tokenizer import (
    BOS_TOKEN,
    CHATML_TEMPLATE,
    EOS_TOKEN,
    PAD_TOKEN,
    SPECIAL_TOKENS,
    ByteTokenizer,
)

PRESETS: dict[str, ModelConfig] = {"tiny": TINY_CONFIG, "llama3-8b-random": LLAMA3_8B_SHAPE_CONFIG}


def build_preset(name: str, device: torch.device, dtype: torch.dtype, seed: int = 0) -> LlamaForCausalLM:
    """``tiny`` is built on the CPU (identical weights on every machine) and moved; larger presets are
    allocated and initialised on ``device`` directly (seeded, but device-specific draws)."""
    if name == "tiny":
        return build_tiny_model(seed).to(device=device, dtype=dtype)
    with torch.device("meta"):
        model = LlamaForCausalLM(PRESETS[name])
    model = model.to(dtype=dtype).to_empty(device=device)
    init_weights(model, seed)
    return model.eval()


def build_tiny_model(seed: int = 0) -> LlamaForCausalLM:
    """float32 on CPU; linears and embeddings ~ N(0, 0.02), norms = 1, drawn in parameter order from a
    ``torch.Generator`` seeded with ``seed`` (identical across runs and machines)."""
    model = LlamaForCausalLM(TINY_CONFIG)
    init_weights(model, seed)
    return model.eval()


def init_weights(model: torch.nn.Module, seed: int, std: float = 0.02) -> None:
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.fill_(1.0)
            else:
                param.normal_(0.0, std, generator=generator)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character map used by byte-level BPE."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    mapping: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def build_byte_level_hf_tokenizer() -> Any:
    """A ``PreTrainedTokenizerFast`` with the same ids as ``ByteTokenizer``: byte ``b`` is id ``b`` (BPE over
    the 256 byte-level symbols, no merges), specials at 256..383, BOS prepended, ChatML chat template."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {char: byte for byte, char in bytes_to_unicode().items()}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    bos_id = ByteTokenizer().bos_token_id
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A", pair=f"{BOS_TOKEN} $A {BOS_TOKEN} $B", special_tokens=[(BOS_TOKEN, bos_id)]
    )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        clean_up_tokenization_spaces=False,
    )
    hf.chat_template = CHATML_TEMPLATE
    return hf


def save_tiny_checkpoint(path: str | Path, seed: int = 0, dtype: torch.dtype = torch.float32) -> Path:
    """Write the tiny preset as a Hugging Face checkpoint dir that ``load_model(path)`` loads back to the same
    logits (in ``dtype``)."""
    from safetensors.torch import save_file

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    to_hf_llama_config(TINY_CONFIG, dtype).save_pretrained(out)
    model = build_tiny_model(seed)
    tensors = {name: t.detach().to(dtype).contiguous() for name, t in model.state_dict().items()}
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    build_byte_level_hf_tokenizer().save_pretrained(out)
    (out / "generation_config.json").write_text(
        json.dumps(
            {"bos_token_id": TINY_CONFIG.bos_token_id, "eos_token_id": list(TINY_CONFIG.eos_token_ids)}
        )
    )
    return out


def to_hf_llama_config(config: ModelConfig, dtype: torch.dtype) -> Any:
    """A ``transformers.LlamaConfig`` describing ``config`` (default rope only)."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        head_dim=config.head_dim,
        max_position_embeddings=config.max_position_embeddings,
        rms_norm_eps=config.rms_norm_eps,
        rope_theta=config.rope.theta,
        tie_word_embeddings=config.tie_word_embeddings,
        attention_bias=config.attention_bias,
        bos_token_id=config.bos_token_id,
        eos_token_id=list(config.eos_token_ids),
        pad_token_id=ByteTokenizer().pad_token_id,
        architectures=["LlamaForCausalLM"],
        dtype=dtype,
    )
