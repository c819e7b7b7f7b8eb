"""Engine configuration (frozen; derived values are computed once the model is known)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineConfig:
    """``model``: a preset (``"tiny"``), a named model (``"smollm2"``), a ``.gguf`` file or a Hugging Face
    checkpoint directory (see ``load_model``). ``num_kv_blocks=None`` sizes the cache from memory:
    ``gpu_memory_utilization`` of the GPU's free memory after the weights on CUDA, ``cpu_kv_cache_gib`` on
    CPU. ``max_model_len=None`` takes the model's context, capped by what the cache holds."""

    model: str = "tiny"
    device: str = "cpu"
    dtype: str | None = None
    block_size: int = 16
    num_kv_blocks: int | None = None
    max_num_batched_tokens: int = 2048
    max_num_seqs: int = 256
    max_model_len: int | None = None
    enable_prefix_caching: bool = True
    attention_backend: str = "auto"  # auto: triton on CUDA, torch elsewhere; or "torch" | "triton"
    gpu_memory_utilization: float = 0.9
    cpu_kv_cache_gib: float = 1.0
    seed: int = 0
    policy: str = "tether"
    num_cpu_kv_blocks: int | None = None  # None: 4x the GPU blocks when the policy uses a CPU tier, else 0
    cost_model: str | None = None  # the policies' estimate of step times; None: the backend's or a default
    max_num_waiting: int | None = None  # cap on requests waiting for admission (QueueFullError); None: none
    num_threads: int | None = None  # torch intra-op threads for the model (threads.py); None: torch's own
    # True runs eager; None (the default) compiles the forward on CPU, eager where $TETHER_ENFORCE_EAGER=1 or the
    # compile fails; False compiles or fails (compiled.py). CUDA runs eager.
    enforce_eager: bool | None = None
    # the trace (file stem) the shipped turns prior leaves out: tether replay sets its workload's (fit_prior.py)
    turns_prior_exclude: str | None = None

    def __post_init__(self) -> None:
        if self.block_size < 1 or self.block_size & (self.block_size - 1):
            raise ValueError(f"block_size must be a power of two, got {self.block_size}")
        if self.num_kv_blocks is not None and self.num_kv_blocks < 1:
            raise ValueError(f"num_kv_blocks must be >= 1, got {self.num_kv_blocks}")
        if self.max_num_waiting is not None and self.max_num_waiting < 1:
            raise ValueError(f"max_num_waiting must be >= 1, got {self.max_num_waiting}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {self.num_threads}")
        if self.max_num_batched_tokens < 1:
            raise ValueError(f"max_num_batched_tokens must be >= 1, got {self.max_num_batched_tokens}")
