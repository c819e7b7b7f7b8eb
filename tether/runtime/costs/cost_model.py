"""Step-time models: how long one engine step takes, from its shape.

A step is a list of chunks ``(new_tokens, cached_context)``: ``new_tokens`` computed on top of ``cached_context``
tokens already in the cache (a decode step is ``(1, context)``), plus KV blocks copied between GPU and CPU.

- ``LinearCostModel``: ``overhead + per_seq*S + per_token*sum(n) + per_pair*sum(n*(c + n/2)) + per_kv*sum(c+n)``
  fitted by least squares to measured steps (CPU is compute-bound, so the terms add up).
- ``RooflineCostModel``: ``overhead + per_seq*S + max(compute, memory) + copies``: compute is weight FLOPs
  (2 x params per token) and attention FLOPs per (query, key) pair at an effective FLOP rate; memory is the
  weights plus every sequence's KV read once at an effective bandwidth.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

Chunk = tuple[int, int]  # (new tokens, cached context before them)


class CostModel(Protocol):
    name: str

    def step_time(self, chunks: Sequence[Chunk], copied_blocks: int = 0) -> float: ...

    def prefill_time(self, new_tokens: int, cached_tokens: int = 0) -> float:
        """One sequence's prefill alone: what losing its cache costs when it is re-admitted."""
        ...


def step_features(chunks: Sequence[Chunk]) -> tuple[int, int, float, int]:
    """(sequences, new tokens, attention pairs, KV tokens read)."""
    seqs = len(chunks)
    tokens = sum(n for n, _ in chunks)
    pairs = sum(n * (c + (n + 1) / 2) for n, c in chunks)
    kv = sum(n + c for n, c in chunks)
    return seqs, tokens, pairs, kv


@dataclass(frozen=True)
class LinearCostModel:
    name: str
    overhead_s: float
    per_seq_s: float
    per_token_s: float
    per_pair_s: float
    per_kv_token_s: float
    per_copy_block_s: float = 0.0
    source: str = ""

    def step_time(self, chunks: Sequence[Chunk], copied_blocks: int = 0) -> float:
        seqs, tokens, pairs, kv = step_features(chunks)
        return (
            max(
                0.0,
                self.overhead_s
                + self.per_seq_s * seqs
                + self.per_token_s * tokens
                + self.per_pair_s * pairs
                + self.per_kv_token_s * kv,
            )
            + self.per_copy_block_s * copied_blocks
        )

    def prefill_time(self, new_tokens: int, cached_tokens: int = 0) -> float:
        return self.step_time([(new_tokens, cached_tokens)])

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"kind": "linear", **asdict(self)}, indent=2))


@dataclass(frozen=True)
class RooflineCostModel:
    name: str
    params: float  # model parameters
    weight_bytes: float
    attn_flops_per_pair: float  # 4 x layers x heads x head_dim (QK^T and PV, 2 FLOPs per MAC)
    kv_bytes_per_token: float  # 2 x layers x kv_heads x head_dim x bytes
    flops_per_s: float  # effective (peak x efficiency)
    bytes_per_s: float  # effective HBM bandwidth
    overhead_s: float
    per_seq_s: float
    copy_bytes_per_s: float  # host <-> device
    block_size: int = 16
    source: str = ""

    def step_time(self, chunks: Sequence[Chunk], copied_blocks: int = 0) -> float:
        seqs, tokens, pairs, kv = step_features(chunks)
        compute = (2 * self.params * tokens + self.attn_flops_per_pair * pairs) / self.flops_per_s
        memory = (self.weight_bytes + self.kv_bytes_per_token * kv) / self.bytes_per_s
        copies = copied_blocks * self.block_size * self.kv_bytes_per_token / self.copy_bytes_per_s
        return self.overhead_s + self.per_seq_s * seqs + max(compute, memory) + copies

    def prefill_time(self, new_tokens: int, cached_tokens: int = 0) -> float:
        return self.step_time([(new_tokens, cached_tokens)])


# Llama-3.1-8B in bf16 on one H100 SXM, from published figures (no H100 measurement was available):
# - NVIDIA H100 SXM datasheet: 989 TFLOP/s dense BF16, 3.35 TB/s HBM3; PCIe Gen5 x16: 64 GB/s per direction.
# - Llama-3.1-8B config: 8.03e9 params, 32 layers, 32 heads x 128, 8 KV heads -> 128 KiB of KV per token.
# - Efficiencies (our assumption, stated): 55% of peak FLOP/s in prefill, 80% of HBM bandwidth in decode,
#   50 GB/s effective copies, 1.5 ms scheduling/launch overhead per step. These give ~7.5 ms per decode step at
#   batch 1 and ~0.23 s to prefill 7.6K tokens, in line with published vLLM figures for this model and GPU.
H100_LLAMA31_8B = RooflineCostModel(
    name="h100-llama3.1-8b",
    params=8.03e9,
    weight_bytes=16.06e9,
    attn_flops_per_pair=4 * 32 * 32 * 128,
    kv_bytes_per_token=2 * 32 * 8 * 128 * 2,
    flops_per_s=989e12 * 0.55,
    bytes_per_s=3.35e12 * 0.80,
    overhead_s=1.5e-3,
    per_seq_s=2e-5,
    copy_bytes_per_s=50e9,
    source="published figures: H100 SXM datasheet, Llama-3.1-8B config; efficiencies assumed (see cost_model.py)",
)

_BUILTIN_DIR = Path(__file__).parent / "cost_models"


def default_cost_model_name(device: object) -> str:
    """What the policies assume about step times when nothing is configured: the H100 model on CUDA, this
    machine's calibrated tiny model elsewhere."""
    return H100_LLAMA31_8B.name if getattr(device, "type", str(device)) == "cuda" else "tiny-cpu"


def load_cost_model(name: str) -> CostModel:
    """A built-in name (``h100-llama3.1-8b``, ``tiny-cpu``) or a JSON file written by ``tether calibrate``."""
    if name == H100_LLAMA31_8B.name:
        return H100_LLAMA31_8B
    path = _BUILTIN_DIR / f"{name}.json" if (_BUILTIN_DIR / f"{name}.json").is_file() else Path(name)
    if not path.is_file():
        known = [H100_LLAMA31_8B.name, *sorted(p.stem for p in _BUILTIN_DIR.glob("*.json"))]
        raise ValueError(f"unknown cost model {name!r}: not a built-in ({', '.join(known)}) nor a JSON file")
    doc = json.loads(path.read_text())
    kind = doc.pop("kind", "linear")
    if kind != "linear":
        raise ValueError(f"{path}: unknown cost model kind {kind!r}")
    return LinearCostModel(**doc)
