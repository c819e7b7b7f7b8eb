"""The synchronous engine core: ``add_request`` / ``step`` / ``abort``. One step is
``scheduler.schedule()`` -> ``runner.run(plan)`` -> ``scheduler.update(plan, tokens)``."""

from __future__ import annotations

import array
import itertools
import logging
import random
import time
from collections.abc import Callable
from collections.abc import Sequence as Seq

import torch

from tether.kvcache import KVCacheManager
from tether.runtime.costs import default_cost_model_name, load_cost_model
from tether.runtime.engine.backend import ExecutionBackend, ModelBackend
from tether.runtime.engine.config import EngineConfig
from tether.runtime.engine.errors import InvalidRequestError, QueueFullError
from tether.runtime.engine.outputs import RequestOutput
from tether.runtime.engine.programs import PolicyPriority, ProgramManager
from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.scheduler import Scheduler, SchedulerConfig, SchedulerOutput
from tether.runtime.engine.sequence import FinishReason, ProgramHints, Sequence, TurnOutcome
from tether.runtime.engine.stop import StopChecker
from tether.runtime.engine.structured.manager import StructuredOutputManager
from tether.runtime.engine.threads import apply_threads
from tether.runtime.engine.tracing import EngineTracer
from tether.runtime.policies import PolicyContext, SchedulingPolicy, get_policy
from tether.runtime.policies.programs import ProgramTable
from tether.runtime.tracing.writer import TraceSink
from tether.tools.durations import ToolDurationStats

log = logging.getLogger(__name__)


class LLMEngine:
    def __init__(
        self,
        config: EngineConfig,
        policy: SchedulingPolicy | str | None = None,
        *,
        backend: ExecutionBackend | None = None,
        clock: Callable[[], float] = time.monotonic,
        tool_stats: ToolDurationStats | None = None,
        observe_tools: bool = True,
    ) -> None:
        """``backend=None`` loads ``config.model``; a simulation passes a cost-model backend and its clock.
        ``policy``: a ``SchedulingPolicy`` or its name (default ``config.policy``). ``tool_stats``: the
        deployment's tool durations (a fresh one when absent), into which the pause between a program's turns
        is observed unless ``observe_tools`` is False (the tool runner measures the calls itself)."""
        self.config = config
        self.clock = clock
        if backend is None and config.num_threads is not None:
            apply_threads(config.num_threads)  # before the model loads, on the thread that will step it
        self.backend = backend or ModelBackend(
            config.model,
            config.device,
            config.dtype,
            config.seed,
            config.attention_backend,
            config.gpu_memory_utilization,
            config.cpu_kv_cache_gib,
            config.enforce_eager,
        )
        self.model_config = self.backend.model_config
        self.device = self.backend.device  # where per-request sampling generators live
        self.dtype = self.backend.dtype
        self.tokenizer = self.backend.tokenizer
        tokenizer_eos = self.tokenizer.eos_token_ids if self.tokenizer is not None else ()
        self.eos_token_ids = tuple(dict.fromkeys(self.model_config.eos_token_ids + tuple(tokenizer_eos)))
        num_blocks = config.num_kv_blocks or self.backend.default_num_blocks(config.block_size)
        self.max_model_len = self._max_model_len(num_blocks)
        self.policy = get_policy(policy or config.policy) if isinstance(policy, (str, type(None))) else policy
        num_cpu = config.num_cpu_kv_blocks
        if num_cpu is None:
            num_cpu = 4 * num_blocks if self.policy.cpu_tier else 0
        self.kv_manager = KVCacheManager(
            num_blocks,
            config.block_size,
            enable_prefix_caching=config.enable_prefix_caching,
            clock=clock,
            num_cpu_blocks=num_cpu,
            offload_on_evict=self.policy.offload_on_evict,
        )
        # Grammars of structured requests (xgrammar is loaded on the first one): compiled at add_request,
        # masks applied by the runner's sampler, matchers advanced here after each step.
        self.structured = StructuredOutputManager(
            self.tokenizer, self.model_config.vocab_size, self.eos_token_ids
        )
        tables = self.kv_manager.block_table
        self.runner = self.backend.build_runner(
            num_blocks, config.block_size, tables, self.eos_token_ids, num_cpu, structured=self.structured
        )
        cost_model = getattr(self.backend, "cost_model", None) or load_cost_model(
            config.cost_model or default_cost_model_name(self.device)
        )
        ctx = PolicyContext(
            self.kv_manager,
            ProgramTable(prior_exclude=config.turns_prior_exclude),
            tool_stats or ToolDurationStats(),
            cost_model,
            clock,
            self._waiting_prefill_tokens,
            lambda: len(self.scheduler.waiting),
            lambda: len(self.scheduler.running),
        )
        self.programs = ProgramManager(self.policy, ctx, self.kv_manager)
        self.programs.observe_tools = observe_tools
        sched_config = SchedulerConfig(config.max_num_batched_tokens, config.max_num_seqs, self.max_model_len)
        self.scheduler = Scheduler(
            sched_config,
            self.kv_manager,
            PolicyPriority(self.policy, ctx),
            relieve=self.programs.relieve,
            on_admit=self.programs.on_admit,
            on_preempt=self.programs.on_preempt,
            relieve_pins=getattr(self.policy, "relieve_pins", "eager"),
        )
        self.stop = StopChecker(self.tokenizer, self.eos_token_ids, self.max_model_len)
        self._seqs: dict[str, Sequence] = {}
        self._counter = itertools.count()
        self._rng = random.Random(config.seed)
        self.last_plan: SchedulerOutput | None = None
        # What a finished turn's output says (the tool it called, whether the program ends). By default the
        # submitter's hints (a static DAG's plan); replay reveals the trace's tool here, at turn end, and a
        # server would parse the output's tool call.
        self.turn_outcome: Callable[[Sequence], TurnOutcome] = lambda seq: TurnOutcome.from_hints(seq.hints)
        self.tracer: EngineTracer | None = None

    def trace_to(self, sink: TraceSink | None) -> None:
        """Emit the engine's trace events (docs/tracing.md) into ``sink`` (``None``: stop). Call it between steps
        (on the engine's thread when an ``AsyncEngine`` runs it)."""
        self.tracer = None if sink is None else EngineTracer(sink, self.clock)
        self.programs.on_kv_event = None if self.tracer is None else self.tracer.kv

    def _waiting_prefill_tokens(self) -> int:
        return sum(s.num_tokens - s.num_computed_tokens for s in self.scheduler.waiting)

    def _max_model_len(self, num_blocks: int) -> int:
        limits = [self.model_config.max_position_embeddings, num_blocks * self.config.block_size]
        if self.config.max_model_len is not None:
            limits.append(self.config.max_model_len)
        if self.model_config.sliding_window:
            limits.append(self.model_config.sliding_window)  # no sliding-window attention: stay inside it
        return min(limits)

    # -- requests -------------------------------------------------------------------------------------------
    def add_request(
        self,
        prompt: str | Seq[int],
        params: SamplingParams | None = None,
        *,
        request_id: str | None = None,
        hints: ProgramHints | None = None,
        arrival_time: float | None = None,
    ) -> Sequence:
        """Validate and queue a request. Raises ``InvalidRequestError`` naming the request and the field, or
        ``QueueFullError`` when ``max_num_waiting`` requests already wait; a rejected request changes nothing,
        so the engine goes on serving the others. ``arrival_time`` is on the engine's ``clock`` (default: now),
        the one clock every policy reads: virtual in a simulation."""
        index = next(self._counter)
        rid = request_id if request_id is not None else f"req-{index}"
        params = params if params is not None else SamplingParams()
        if rid in self._seqs:
            raise InvalidRequestError(rid, "request_id", "a request with this id is already in flight")
        if not isinstance(params, SamplingParams):
            raise InvalidRequestError(
                rid, "sampling_params", f"expected SamplingParams, got {type(params).__name__}"
            )
        cap = self.config.max_num_waiting
        if cap is not None and len(self.scheduler.waiting) >= cap:
            raise QueueFullError(rid, len(self.scheduler.waiting))
        text, ids = self._tokenize(rid, prompt)
        if len(ids) >= self.max_model_len:
            raise InvalidRequestError(
                rid,
                "prompt",
                f"prompt has {len(ids)} tokens; the model's context is {self.max_model_len} "
                "tokens (at least one must remain for output)",
            )
        grammar = self.structured.compile(rid, params)  # None for an unconstrained request
        generator = None
        if not params.greedy:
            seed = params.seed if params.seed is not None else self._rng.getrandbits(63)
            generator = torch.Generator(device=self.device).manual_seed(seed)
        seq = Sequence(
            rid,
            ids,
            params,
            prompt=text,
            arrival_time=self.clock() if arrival_time is None else arrival_time,  # the clock policies read
            hints=hints,
            generator=generator,
            seq_index=index,
        )
        if grammar is not None:
            self.structured.add(rid, grammar)
        self._seqs[rid] = seq
        self.programs.on_request(seq)
        self.scheduler.add(seq)
        if self.tracer is not None:
            self.tracer.queued(seq)
        return seq

    def _tokenize(self, rid: str, prompt: str | Seq[int]) -> tuple[str | None, list[int]]:
        if isinstance(prompt, str):
            if not prompt:
                raise InvalidRequestError(rid, "prompt", "prompt is empty")
            if self.tokenizer is None:
                raise InvalidRequestError(rid, "prompt", "this engine has no tokenizer: give token ids")
            return prompt, self.tokenizer.encode(prompt)
        try:
            ids = array.array("q", prompt)  # a C loop: rejects non-integers
        except (TypeError, OverflowError):
            raise InvalidRequestError(rid, "prompt_token_ids", "token ids must be integers") from None
        if not ids:
            raise InvalidRequestError(rid, "prompt_token_ids", "prompt is empty")
        vocab = self.model_config.vocab_size
        if min(ids) < 0 or max(ids) >= vocab:
            bad = [t for t in ids if not 0 <= t < vocab]
            raise InvalidRequestError(rid, "prompt_token_ids", f"token ids outside [0, {vocab}): {bad[:5]}")
        ids = ids.tolist()
        return None, ids

    def abort(self, request_id: str) -> RequestOutput | None:
        seq = self._seqs.pop(request_id, None)
        if seq is None:
            return None
        self._end_program(seq)
        self.scheduler.finish(seq, FinishReason.ABORT)
        self.stop.forget(request_id)
        self.structured.drop(request_id)
        seq.finish_time = self.clock()
        if self.tracer is not None:
            self.tracer.finished(seq, FinishReason.ABORT.value)
        return RequestOutput.of(seq)

    def end_program(self, program_id: str) -> None:
        """Release the program's KV pin and forget it (it finished, failed or was cancelled); a no-op for an
        unknown program. Requests of the program still in flight go on."""
        self.programs.end_program(program_id)

    def has_unfinished(self) -> bool:
        return self.scheduler.has_unfinished()

    @property
    def num_unfinished(self) -> int:
        return len(self._seqs)

    # -- stepping -------------------------------------------------------------------------------------------
    def step(self) -> list[RequestOutput]:
        """Run one batch. Returns a snapshot of every request that got a token or finished in this step. A
        failing forward pass fails the requests of that batch (``finish_reason == "error"``), not the engine."""
        started = self.clock()
        self.programs.before_step()
        if self.programs.take_resort() or getattr(self.policy, "resort_each_step", False):
            self.scheduler.resort()
        plan = self.scheduler.schedule()
        if plan.is_empty:
            self.last_plan = None  # nothing could run: waiting requests are blocked on memory
            return []
        self.last_plan = plan
        try:
            sampled = self.runner.run(plan, self.kv_manager.take_pending_copies())
        except Exception as exc:  # noqa: BLE001 - the batch fails, the engine keeps serving
            log.exception("step failed for %d requests", len(plan.chunks))
            return self._fail_batch([chunk.seq for chunk in plan.chunks], exc)
        self.programs.account(plan)
        now = self.clock()
        tracer = self.tracer
        if tracer is not None:
            tracer.step(plan, started)
        outputs = []
        for seq in self.scheduler.update(plan, sampled):
            if seq.first_token_time is None:
                seq.first_token_time = now
                if tracer is not None:
                    tracer.first_token(seq)
            # the grammar accepts the new token, or the request fails
            rejected = self.structured.advance(seq)
            if rejected is not None:
                outputs.append(self._fail(seq, rejected))
                continue
            reason = self.stop.check(seq)
            if reason is not None:
                self.programs.on_turn_end(seq, self.turn_outcome(seq))
                self.scheduler.finish(seq, reason)
                self.structured.drop(seq.request_id)
                seq.finish_time = now
                del self._seqs[seq.request_id]
                if tracer is not None:
                    tracer.finished(seq, reason.value)
            outputs.append(RequestOutput.of(seq))
        if tracer is not None:
            tracer.counters(self.scheduler, self.kv_manager, plan.num_batched_tokens, started)
        return outputs

    def fail_all(self, exc: BaseException) -> list[RequestOutput]:
        """Fail every request in flight (the engine itself hit an error outside a forward pass)."""
        return self._fail_batch(list(self._seqs.values()), exc)

    def _fail_batch(self, seqs: list[Sequence], exc: BaseException) -> list[RequestOutput]:
        """Fail the requests, then drop every unreferenced cached block: blocks registered for this step
        (reloads from the CPU tier) may never have received their contents."""
        outputs = [self._fail(seq, exc) for seq in seqs]
        self.kv_manager.reset_prefix_cache()
        return outputs

    def _fail(self, seq: Sequence, exc: BaseException) -> RequestOutput:
        seq.error = exc
        self._end_program(seq)
        self.scheduler.finish(seq, FinishReason.ERROR)
        self.stop.forget(seq.request_id)
        self.structured.drop(seq.request_id)
        seq.finish_time = self.clock()
        self._seqs.pop(seq.request_id, None)
        if self.tracer is not None:
            self.tracer.finished(seq, FinishReason.ERROR.value)
        return RequestOutput.of(seq)

    def _end_program(self, seq: Sequence) -> None:
        """A turn that did not finish normally ends its program's pin (nothing is kept for a failed turn)."""
        if seq.hints.program_id is not None:
            self.programs.end_program(seq.hints.program_id)

    def check_integrity(self) -> None:
        """The cache's own invariants, plus: blocks are held by exactly the running sequences; grammar
        matchers exist for exactly the structured requests in flight, each having accepted its output."""
        self.kv_manager.check_integrity()
        self.structured.check_integrity(self._seqs)
        running = {s.request_id for s in self.scheduler.running}
        holders = {rid for rid in self._seqs if self.kv_manager.has_seq(rid)}
        if holders != running:
            raise AssertionError(f"sequences holding blocks {sorted(holders)} != running {sorted(running)}")
        if not self._seqs and self.kv_manager.num_used_blocks > self.kv_manager.num_pinned_blocks:
            raise AssertionError(
                f"{self.kv_manager.num_used_blocks} blocks in use with no request in flight "
                f"({self.kv_manager.num_pinned_blocks} pinned)"
            )
