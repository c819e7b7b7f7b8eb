"""Llama-family decoder (Llama, Qwen2, Mistral) over flat tokens: no batch dimension, no padding.

All sequences of a step are concatenated into ``T`` tokens; attention goes through an ``AttentionFn``
that owns the KV cache. Parameter names equal Hugging Face's, so a safetensors state dict loads by name.

    input_ids [T] -> embed -> N x (x + attn(norm(x)); x + mlp(norm(x))) -> norm -> hidden [T, H]
    hidden [N, H] -> lm_head -> logits [N, V] fp32
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from runtime.engine.attention.base import AttentionFn
from runtime.engine.models.config import ModelConfig
from runtime.engine.models.rope import RotaryEmbedding, apply_rotary


class RMSNorm(nn.Module):
    """Normalises in float32 and casts back before the weight, like ``LlamaRMSNorm``."""

    def __init__(self, hidden_size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(dtype)


class LlamaAttention(nn.Module):
    def __init__(self, config: ModelConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads = config.num_heads
        self.num_kv_heads = config.num_kv_heads
        self.head_dim = config.head_dim
        self.q_proj = nn.Linear(config.hidden_size, config.q_size, bias=config.attention_bias)
        self.k_proj = nn.Linear(config.hidden_size, config.kv_size, bias=config.attention_bias)
        self.v_proj = nn.Linear(config.hidden_size, config.kv_size, bias=config.attention_bias)
        self.o_proj = nn.Linear(config.q_size, config.hidden_size, bias=config.o_proj_bias)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, attn: AttentionFn
    ) -> torch.Tensor:
        t = x.shape[0]
        q = self.q_proj(x).view(t, self.num_heads, self.head_dim)  # (T, Hq, D)
        k = self.k_proj(x).view(t, self.num_kv_heads, self.head_dim)  # (T, Hkv, D)
        v = self.v_proj(x).view(t, self.num_kv_heads, self.head_dim)  # (T, Hkv, D)
        q, k = apply_rotary(q, k, cos, sin)
        o = attn(self.layer_idx, q, k, v)  # (T, Hq, D)
        return self.o_proj(o.reshape(t, self.num_heads * self.head_dim))  # (T, H)


class LlamaMLP(nn.Module):
    """SwiGLU: ``down(silu(gate(x)) * up(x))``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, config: ModelConfig, layer_idx: int) -> None:
        super().__init__()
        self.self_attn = LlamaAttention(config, layer_idx)
        self.mlp = LlamaMLP(config)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, attn: AttentionFn
    ) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, attn)  # (T, H)
        return x + self.mlp(self.post_attention_layernorm(x))  # (T, H)


class LlamaModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(LlamaDecoderLayer(config, i) for i in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(config.rope, config.head_dim, config.max_position_embeddings)

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor, attn: AttentionFn) -> torch.Tensor:
        cos, sin = self.rotary_emb.cos_sin(positions)  # (T, D) fp32 each
        x = self.embed_tokens(input_ids)  # (T, H)
        for layer in self.layers:
            x = layer(x, cos, sin, attn)
        return self.norm(x)  # (T, H)


class LlamaForCausalLM(nn.Module):
    """``forward(input_ids [T], positions [T], attn) -> hidden [T, H]``; ``compute_logits(hidden [N, H])``.

    ``forward`` returns the final-norm hidden states of every token so the caller picks the rows it samples
    from (usually the last token of each sequence) before paying for the vocabulary projection.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.model = LlamaModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.tie_weights()

    def tie_weights(self) -> None:
        """Share ``lm_head.weight`` with ``model.embed_tokens.weight`` when the config says so (re-run after
        moving parameters with ``to_empty``, which does not keep sharing)."""
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor, attn: AttentionFn) -> torch.Tensor:
        return self.model(input_ids, positions, attn)

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(hidden).float()  # (N, V)
