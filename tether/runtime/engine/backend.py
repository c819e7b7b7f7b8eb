"""What executes the steps: the real model (CPU or CUDA) or a cost model on a virtual clock. The scheduler and
the KV cache manager are the same in both; only the runner differs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import torch

from tether.kvcache import PendingCopies
from tether.runtime.engine.models.config import ModelConfig
from tether.runtime.engine.runner_output import RunnerOutput
from tether.runtime.engine.scheduler import SchedulerOutput
from tether.runtime.engine.structured.manager import StructuredOutputManager
from tether.runtime.engine.tokenizer import Tokenizer

log = logging.getLogger(__name__)


class Runner(Protocol):
    def run(self, plan: SchedulerOutput, copies: PendingCopies | None = None) -> RunnerOutput:
        """Execute the KV block copies, then the plan; the tokens sampled for the chunks that reach their
        sequence's end."""
        ...


class ExecutionBackend(Protocol):
    model_config: ModelConfig
    tokenizer: Tokenizer | None
    device: torch.device  # where sampling generators live (CPU for a simulation)
    dtype: torch.dtype

    def bytes_per_block(self, block_size: int) -> int: ...

    def default_num_blocks(self, block_size: int) -> int: ...

    def build_runner(
        self,
        num_blocks: int,
        block_size: int,
        block_tables: Callable[[str], list[int]],
        eos: tuple[int, ...],
        num_cpu_blocks: int = 0,
        structured: StructuredOutputManager | None = None,
    ) -> Runner:
        """``structured``: the engine's grammars, for a runner that samples (a simulation has no tokenizer,
        so it never gets a structured request)."""
        ...


class ModelBackend:
    """Loads the model (a preset or a local checkpoint) and runs it over the paged cache."""

    def __init__(
        self,
        model: str,
        device: str,
        dtype: str | None,
        seed: int,
        attention_backend: str,
        gpu_memory_utilization: float,
        cpu_kv_cache_gib: float,
        enforce_eager: bool | None = None,
    ) -> None:
        """``enforce_eager``: see ``compiled.should_compile``; a compiled forward is built and warmed up here,
        so the engine is ready when this returns (``compile_s`` says how long that took)."""
        from tether.runtime.engine.attention import resolve_backend_name
        from tether.runtime.engine.compiled import CompiledForward, compile_cache_dir, should_compile
        from tether.runtime.engine.errors import ModelLoadError
        from tether.runtime.engine.models.loader import load_model
        from tether.runtime.engine.torch_utils import resolve_dtype

        self.device = torch.device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        compiled = should_compile(self.device, enforce_eager)
        loaded = load_model(model, device=self.device, dtype=self.dtype, seed=seed)
        self.model = loaded.model
        self.compiled = CompiledForward(self.model) if compiled else None
        self.compile_s = 0.0
        if self.compiled is not None:
            try:
                self.compile_s = self.compiled.warm_up(self.device)
            except Exception as exc:  # inductor's failures have no common type (no C++ compiler, a torch bug)
                self.compiled.release()
                self.compiled = None
                if enforce_eager is False:
                    raise ModelLoadError(f"{model}: compiling the forward failed: {exc}") from exc
                log.warning("%s: compiling the forward failed, running eager (--enforce-eager): %s", model, exc)
            else:
                log.info("compiled the forward pass in %.1f s (cache: %s)", self.compile_s, compile_cache_dir())
        self.model_config = loaded.config
        self.tokenizer = loaded.tokenizer
        self.attention_backend = resolve_backend_name(attention_backend, self.device)
        self.gpu_memory_utilization = gpu_memory_utilization
        self.cpu_kv_cache_gib = cpu_kv_cache_gib
        self.kv_tensors = None

    def bytes_per_block(self, block_size: int) -> int:
        from tether.runtime.engine.model_runner import KVCacheTensors

        return KVCacheTensors.bytes_per_block(self.model_config, block_size, self.dtype)

    def default_num_blocks(self, block_size: int) -> int:
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            budget = free * self.gpu_memory_utilization
        else:
            budget = self.cpu_kv_cache_gib * 2**30
        return max(1, int(budget // self.bytes_per_block(block_size)))

    def build_runner(
        self,
        num_blocks: int,
        block_size: int,
        block_tables: Callable[[str], list[int]],
        eos: tuple[int, ...],
        num_cpu_blocks: int = 0,
        structured: StructuredOutputManager | None = None,
    ) -> Runner:
        from tether.runtime.engine.attention import get_backend
        from tether.runtime.engine.model_runner import KVCacheTensors, ModelRunner

        self.kv_tensors = KVCacheTensors(
            self.model_config, num_blocks, block_size, self.device, self.dtype, num_cpu_blocks
        )
        return ModelRunner(
            self.model,
            self.model_config,
            self.kv_tensors,
            get_backend(self.attention_backend),
            block_tables,
            self.device,
            eos,
            structured,
            self.compiled,
        )
