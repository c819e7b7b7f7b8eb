"""``build_engine``: assembles an ``LLMEngine`` from its config. The backend (the model, or a cost model on a
virtual clock), the KV cache, the grammars, the runner, the policy with its program layer, and the scheduler
that calls them are built here, once; the engine only runs them."""

from __future__ import annotations

import time
from collections.abc import Callable

from tether.kvcache import KVCacheManager
from tether.runtime.costs import default_cost_model_name, load_cost_model
from tether.runtime.engine.backend import ExecutionBackend, ModelBackend
from tether.runtime.engine.config import EngineConfig
from tether.runtime.engine.finish import OutputChecks
from tether.runtime.engine.llm_engine import EngineParts, LLMEngine
from tether.runtime.engine.models.config import ModelConfig
from tether.runtime.engine.scheduler import Scheduler, SchedulerConfig
from tether.runtime.engine.sequence import Sequence, TurnOutcome
from tether.runtime.engine.stop import StopChecker
from tether.runtime.engine.structured.manager import StructuredOutputManager
from tether.runtime.engine.threads import apply_threads
from tether.runtime.engine.tracing import ModelLoad
from tether.runtime.policies import PolicyContext, SchedulingPolicy, get_policy
from tether.runtime.programs.layer import PolicyPriority, ProgramManager
from tether.runtime.programs.table import ProgramTable
from tether.tools.durations import ToolDurationStats


def build_engine(
    config: EngineConfig,
    policy: SchedulingPolicy | str | None = None,
    *,
    backend: ExecutionBackend | None = None,
    clock: Callable[[], float] = time.monotonic,
    tool_stats: ToolDurationStats | None = None,
    turn_outcome: Callable[[Sequence], TurnOutcome] | None = None,
) -> LLMEngine:
    """``backend=None`` loads ``config.model``; a simulation passes a cost-model backend and its clock.
    ``policy``: a ``SchedulingPolicy`` or its name (default ``config.policy``). ``tool_stats``: the
    deployment's tool durations, which the policies read (a fresh one when absent; the tool runner writes
    them). ``turn_outcome``: what a finished turn's output says (default: the request's hints). An engine that
    loads its model records how (``LLMEngine.model_load``; its trace's ``model_load`` event)."""
    started, loads = time.time(), backend is None
    if backend is None and config.num_threads is not None:
        apply_threads(config.num_threads)  # before the model loads, on the thread that will step it
    backend = backend or _model_backend(config)
    model_config = backend.model_config
    tokenizer = backend.tokenizer
    eos = _eos_token_ids(model_config, tokenizer)
    num_blocks = config.num_kv_blocks or backend.default_num_blocks(config.block_size)
    max_model_len = _max_model_len(config, model_config, num_blocks)
    policy = get_policy(policy or config.policy) if isinstance(policy, (str, type(None))) else policy
    kv = _kv_cache(config, policy, num_blocks, clock)
    # Grammars of structured requests (xgrammar is loaded on the first one): compiled at add_request, masks
    # applied by the runner's sampler, matchers advanced by the scheduler's update.
    structured = StructuredOutputManager(tokenizer, model_config.vocab_size, eos)
    runner = backend.build_runner(
        num_blocks, config.block_size, kv.block_table, eos, kv.num_cpu_blocks, structured=structured
    )
    cost_model = getattr(backend, "cost_model", None) or load_cost_model(
        config.cost_model or default_cost_model_name(backend.device)
    )
    ctx = PolicyContext(  # the queue's figures are read from the scheduler built below, when asked
        kv,
        ProgramTable(prior_exclude=config.turns_prior_exclude),
        tool_stats or ToolDurationStats(),
        cost_model,
        clock,
        lambda: sum(s.num_tokens - s.num_computed_tokens for s in scheduler.waiting),
        lambda: len(scheduler.waiting),
        lambda: len(scheduler.running),
    )
    programs = ProgramManager(policy, ctx, kv, turn_outcome)
    scheduler = Scheduler(
        SchedulerConfig(config.max_num_batched_tokens, config.max_num_seqs, max_model_len),
        kv,
        PolicyPriority(policy, ctx),
        relieve=programs.relieve,
        on_admit=programs.on_admit,
        on_preempt=programs.on_preempt,
        on_finish=programs.on_finish,
        checks=OutputChecks(StopChecker(tokenizer, eos, max_model_len), structured),
        relieve_pins=policy.relieve_pins,
    )
    parts = EngineParts(
        config, clock, backend, model_config, tokenizer, max_model_len, kv, structured, runner, scheduler
    )
    return _loaded(LLMEngine(parts, programs), started if loads else None)


def _loaded(engine: LLMEngine, started: float | None) -> LLMEngine:
    """The engine with its ``model_load`` (from ``started`` to now) when it loaded its model."""
    if started is not None:
        backend = engine.backend
        dtype = str(backend.dtype).removeprefix("torch.")
        compiled = getattr(backend, "compiled", None) is not None
        compile_s = float(getattr(backend, "compile_s", 0.0) or 0.0)
        engine.model_load = ModelLoad(
            engine.config.model, str(backend.device), dtype, compiled, compile_s, started, time.time()
        )
    return engine


def _model_backend(config: EngineConfig) -> ModelBackend:
    return ModelBackend(
        config.model,
        config.device,
        config.dtype,
        config.seed,
        config.attention_backend,
        config.gpu_memory_utilization,
        config.cpu_kv_cache_gib,
        config.enforce_eager,
    )


def _eos_token_ids(model_config: ModelConfig, tokenizer) -> tuple[int, ...]:
    tokenizer_eos = tokenizer.eos_token_ids if tokenizer is not None else ()
    return tuple(dict.fromkeys(model_config.eos_token_ids + tuple(tokenizer_eos)))


def _max_model_len(config: EngineConfig, model_config: ModelConfig, num_blocks: int) -> int:
    limits = [model_config.max_position_embeddings, num_blocks * config.block_size]
    if config.max_model_len is not None:
        limits.append(config.max_model_len)
    if model_config.sliding_window:
        limits.append(model_config.sliding_window)  # no sliding-window attention: stay inside it
    return min(limits)


def _kv_cache(
    config: EngineConfig, policy: SchedulingPolicy, num_blocks: int, clock: Callable[[], float]
) -> KVCacheManager:
    num_cpu = config.num_cpu_kv_blocks
    if num_cpu is None:
        num_cpu = 4 * num_blocks if policy.cpu_tier else 0
    return KVCacheManager(
        num_blocks,
        config.block_size,
        enable_prefix_caching=config.enable_prefix_caching,
        clock=clock,
        num_cpu_blocks=num_cpu,
        offload_on_evict=policy.offload_on_evict,
    )
