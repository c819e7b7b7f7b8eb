"""How a model's linear layers run after loading: a plain ``F.linear`` or a oneDNN-prepacked weight on CPU.

vLLM's CPU backend prepacks every unquantized linear weight for oneDNN (``create_onednn_mm`` in
``vllm/model_executor/layers/utils.py``); torch ships the same library, reached through
``torch.ops.mkldnn._reorder_linear_weight`` (pack once) and ``torch.ops.mkldnn._linear_pointwise`` (run), the
pair inductor's weight freezing emits. On this project's 2-core AVX-512 machine the packed weights make the
30 layers' matmuls of SmolLM2 about 2x faster at batch 8 in float32 and 1.6-1.9x faster in bfloat16 (oneDNN
uses the AVX-512 BF16 instructions, or AMX where the CPU has it); ``bench/cpu_step.py`` measures it.

One exception, measured: a single float32 row on one thread runs about 20% faster through the BLAS over a
column-major weight (``[in, out]`` contiguous) than through oneDNN (31.5 against 38.8 ms for SmolLM2's
batch-1 step), while at two threads oneDNN wins (20.5 against 31.6 ms). A float32 ``PackedLinear`` therefore
keeps the column-major weight for that case (``single_row``).

The packed copy is opaque (``torch._mkldnn`` layout), so the model keeps its ``nn.Linear`` parameters (names,
values and ``state_dict`` unchanged; in float32 stored column-major, the same values): on CPU a packed model
holds its weights twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LinearFn = Callable[[torch.Tensor], torch.Tensor]

PACK_BATCH_HINT = 64  # oneDNN's packing is tuned for this many rows; any row count runs (bench/cpu_step.py)


def can_pack(weight: torch.Tensor) -> bool:
    """True where oneDNN prepacking applies: a CPU weight in float32 or bfloat16 with torch's oneDNN built in."""
    return (
        weight.device.type == "cpu"
        and weight.dtype in (torch.float32, torch.bfloat16)
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    )


@dataclass(frozen=True)
class DenseLinear:
    """``x [..., in] -> [..., out]`` with the weight as stored (``[out, in]``)."""

    weight: torch.Tensor
    bias: torch.Tensor | None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


@dataclass(frozen=True)
class PackedLinear:
    """``x [..., in] -> [..., out]`` through a oneDNN-prepacked copy of ``weight [out, in]``."""

    packed: torch.Tensor  # opaque torch._mkldnn layout, [out, in] logically
    bias: torch.Tensor | None
    in_features: int
    out_features: int
    single_row: torch.Tensor | None = None  # float32 [out, in] stored column-major: one row on one thread

    @classmethod
    def of(cls, weight: torch.Tensor, bias: torch.Tensor | None) -> PackedLinear:
        """``weight [out, in]``; a float32 one should be stored column-major (``to_column_major``)."""
        packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), PACK_BATCH_HINT)
        single_row = weight.detach() if weight.dtype == torch.float32 else None
        bias = None if bias is None else bias.detach().contiguous()
        return cls(packed, bias, weight.shape[1], weight.shape[0], single_row)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        rows = x.reshape(-1, self.in_features).contiguous()  # (N, in)
        if self.single_row is not None and rows.shape[0] == 1 and torch.get_num_threads() == 1:
            return F.linear(x, self.single_row, self.bias)
        out = torch.ops.mkldnn._linear_pointwise(rows, self.packed, self.bias, "none", [], "")  # (N, out)
        return out.view(*lead, self.out_features)


def wants_column_major(weight: torch.Tensor, pack: bool) -> bool:
    """Whether ``make_linear(weight, ..., pack)`` runs single rows over a column-major weight (float32)."""
    return pack and can_pack(weight) and weight.dtype == torch.float32


def to_column_major(weight: torch.Tensor) -> torch.Tensor:
    """The same ``[out, in]`` values stored as ``[in, out]`` contiguous (strides ``(1, out)``)."""
    return weight.t().contiguous().t()


def make_linear(weight: torch.Tensor, bias: torch.Tensor | None, pack: bool) -> LinearFn:
    """The packed form where ``pack`` and ``can_pack(weight)``, else ``F.linear`` over the weight itself."""
    if pack and can_pack(weight):
        return PackedLinear.of(weight, bias)
    return DenseLinear(weight, bias)
