"""The execution backend of a simulation: no model; each step advances a virtual clock by the cost model's
time for the step's shape, and "samples" deterministic tokens. Torch-free at import: the engine that runs it
imports torch, this module does not."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from tether.kvcache import PendingCopies
from tether.runtime.costs import CostModel
from tether.runtime.engine.models.config import LLAMA3_8B_SHAPE_CONFIG, ModelConfig
from tether.runtime.engine.runner_output import RunnerOutput
from tether.runtime.engine.scheduler import SchedulerOutput
from tether.runtime.sim.clock import VirtualClock

if TYPE_CHECKING:
    import torch


class SimRunner:
    def __init__(self, cost_model: CostModel, clock: VirtualClock) -> None:
        self.cost_model = cost_model
        self.clock = clock

    def run(self, plan: SchedulerOutput, copies: PendingCopies | None = None) -> RunnerOutput:
        copied = len(copies.to_cpu) + len(copies.to_gpu) if copies is not None else 0
        dt = self.cost_model.step_time([(c.num_new_tokens, c.start) for c in plan.chunks], copied)
        self.clock.advance(dt)
        return RunnerOutput(
            tuple(
                (c.seq.request_id, _token(c.seq.request_id, c.seq.num_tokens))
                for c in plan.chunks
                if c.samples
            )
        )


def _token(request_id: str, position: int) -> int:
    return (zlib.crc32(request_id.encode()) + position * 2654435761) % 256


class SimBackend:
    """Model shapes only matter for the context limit; token ids stay below 256 (no EOS is ever drawn)."""

    tokenizer = None

    def __init__(
        self, cost_model: CostModel, clock: VirtualClock, model_config: ModelConfig = LLAMA3_8B_SHAPE_CONFIG
    ) -> None:
        self.cost_model = cost_model
        self.clock = clock
        self.model_config = model_config

    @property
    def device(self) -> torch.device:
        """Where sampling generators live (a simulation samples nothing, but the engine asks)."""
        import torch

        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        import torch

        return torch.bfloat16

    def bytes_per_block(self, block_size: int) -> int:
        c = self.model_config
        return 2 * c.num_layers * block_size * c.num_kv_heads * c.head_dim * 2

    def default_num_blocks(self, block_size: int) -> int:
        raise ValueError("a simulation needs an explicit num_kv_blocks (--kv-blocks)")

    def build_runner(
        self,
        num_blocks: int,
        block_size: int,
        block_tables: Callable[[str], list[int]],
        eos: tuple[int, ...],
        num_cpu_blocks: int = 0,
        structured: object = None,  # no tokenizer: the engine rejects structured requests
    ) -> SimRunner:
        return SimRunner(self.cost_model, self.clock)
