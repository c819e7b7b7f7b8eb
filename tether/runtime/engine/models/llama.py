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

from tether.runtime.engine.attention.base import AttentionFn
from tether.runtime.engine.models.config import ModelConfig
from tether.runtime.engine.models.linear import LinearFn, make_linear, to_column_major, wants_column_major
from tether.runtime.engine.models.rope import RotaryEmbedding, apply_rotary, step_tables


class RMSNorm(nn.Module):
    """Normalises in float32 and casts back before the weight, like ``LlamaRMSNorm``, with torch's fused
    ``rms_norm`` (one op instead of five for the normalisation)."""

    def __init__(self, hidden_size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        if dtype == torch.float32:
            return F.rms_norm(x, self.weight.shape, self.weight, self.eps)
        xf = F.rms_norm(x.float(), self.weight.shape, None, self.eps)  # x * rsqrt(mean(x^2) + eps), fp32
        return self.weight * xf.to(dtype)


class LlamaAttention(nn.Module):
    """q/k/v projections (loaded by their Hugging Face names), RoPE on q and k together, paged attention.

    After ``prepare(pack)`` one matmul computes q, k and v: the three weights become views of one
    ``[Hq*D + 2*Hkv*D, H]`` tensor (no extra memory; the values are unchanged), run as ``linear.make_linear``
    says (oneDNN-prepacked on CPU).
    """

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
        self.qkv: LinearFn | None = None  # these two are set by prepare()
        self.o: LinearFn | None = None

    def prepare(self, pack: bool) -> None:
        self.qkv = make_linear(*_fuse_linears((self.q_proj, self.k_proj, self.v_proj), pack), pack)
        self.o = make_linear(_laid_out(self.o_proj, pack), self.o_proj.bias, pack)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, attn: AttentionFn
    ) -> torch.Tensor:
        t, hq, hkv = x.shape[0], self.num_heads, self.num_kv_heads
        if self.qkv is not None:
            qkv = self.qkv(x)  # (T, (Hq + 2 Hkv) D)
        else:
            qkv = torch.cat((self.q_proj(x), self.k_proj(x), self.v_proj(x)), dim=-1)
        o_proj = self.o or self.o_proj
        qkv = qkv.view(t, hq + 2 * hkv, self.head_dim)  # (T, Hq + 2 Hkv, D)
        qk = apply_rotary(qkv[:, : hq + hkv], cos, sin)  # (T, Hq + Hkv, D)
        o = attn(self.layer_idx, qk[:, :hq], qk[:, hq:], qkv[:, hq + hkv :])  # (T, Hq, D)
        return o_proj(o.reshape(t, hq * self.head_dim))  # (T, H)


class LlamaMLP(nn.Module):
    """SwiGLU: ``down(silu(gate(x)) * up(x))``; after ``prepare(pack)`` gate and up are one matmul."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.intermediate_size = config.intermediate_size
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.gate_up: LinearFn | None = None  # these two are set by prepare()
        self.down: LinearFn | None = None

    def prepare(self, pack: bool) -> None:
        self.gate_up = make_linear(*_fuse_linears((self.gate_proj, self.up_proj), pack), pack)
        self.down = make_linear(_laid_out(self.down_proj, pack), None, pack)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate_up is None or self.down is None:
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
        gate_up = self.gate_up(x)  # (T, 2 I)
        gate, up = gate_up[:, : self.intermediate_size], gate_up[:, self.intermediate_size :]
        return self.down(F.silu(gate) * up)  # (T, H)


def _laid_out(linear: nn.Linear, pack: bool) -> torch.Tensor:
    """``linear.weight``, stored column-major first where ``make_linear`` wants it (same values and shape)."""
    if wants_column_major(linear.weight, pack):
        linear.weight.data = to_column_major(linear.weight.data)
    return linear.weight


def _fuse_linears(linears: tuple[nn.Linear, ...], pack: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Concatenate the weights (and biases) along the output dim and make each linear's parameters views of
    the result, so a later in-place load into a parameter also updates the fused tensor (not a packed copy:
    pack after the last load). Stored column-major where ``make_linear`` wants it."""
    weight = torch.cat([lin.weight.detach() for lin in linears])  # (sum out, in)
    if wants_column_major(weight, pack):
        weight = to_column_major(weight)
    has_bias = linears[0].bias is not None
    bias = torch.cat([lin.bias.detach() for lin in linears]) if has_bias else None
    start = 0
    for lin in linears:
        end = start + lin.out_features
        lin.weight.data = weight[start:end]
        if bias is not None:
            lin.bias.data = bias[start:end]
        start = end
    return weight, bias


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
        x = self.embed_tokens(input_ids)  # (T, H)
        cos, sin = step_tables(*self.rotary_emb.cos_sin(positions), x.dtype)  # (T, 1, D) each, once per step
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
        self.lm_head_fn: LinearFn | None = None  # set by prepare_for_inference()
        self.tie_weights()

    def tie_weights(self) -> None:
        """Share ``lm_head.weight`` with ``model.embed_tokens.weight`` when the config says so (re-run after
        moving parameters with ``to_empty``, which does not keep sharing)."""
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def prepare_for_inference(self, pack: bool = True) -> LlamaForCausalLM:
        """Call once the weights are loaded and on their device; parameters keep their names and values.

        One matmul for q/k/v and one for gate/up in every layer. ``pack``: on CPU every linear, the
        vocabulary projection included, runs on a oneDNN-prepacked copy of its weight (``linear.py``; the
        weights are then held twice). Weights loaded into the parameters afterwards reach the fused views but not
        a packed copy: call this again."""
        for layer in self.model.layers:
            layer.self_attn.prepare(pack)
            layer.mlp.prepare(pack)
        self.lm_head_fn = make_linear(_laid_out(self.lm_head, pack), None, pack)  # tied: the embedding
        return self

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor, attn: AttentionFn) -> torch.Tensor:
        return self.model(input_ids, positions, attn)

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        lm_head = self.lm_head_fn or self.lm_head
        return lm_head(hidden).float()  # (N, V)
