"""The synchronous engine core: ``add_request`` / ``step`` / ``abort``. One step is ``schedule`` -> ``run`` ->
``update`` (the scheduler finishes what is done); the program layer and the tracer observe it. ``build_engine``
(``builder.py``) assembles the parts."""

from __future__ import annotations

import array
import itertools
import logging
import random
from collections.abc import Callable
from collections.abc import Sequence as Seq
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tether.runtime.engine.errors import InvalidRequestError, QueueFullError
from tether.runtime.engine.outputs import RequestOutput
from tether.runtime.engine.runner_output import RunnerOutput
from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.scheduler import Scheduler, SchedulerOutput, StepUpdate
from tether.runtime.engine.sequence import FinishReason, ProgramHints, Sequence
from tether.runtime.engine.stats import EngineLoad, EngineStats, StatsWindow
from tether.runtime.engine.tracing import EngineTracer, ModelLoad
from tether.runtime.programs.layer import ProgramManager
from tether.runtime.tracing.writer import TraceSink

if TYPE_CHECKING:  # the parts' types only: this module imports no torch (the backend and runner do)
    from tether.kvcache import KVCacheManager
    from tether.runtime.engine.backend import ExecutionBackend, Runner
    from tether.runtime.engine.config import EngineConfig
    from tether.runtime.engine.models.config import ModelConfig
    from tether.runtime.engine.structured.manager import StructuredOutputManager
    from tether.runtime.engine.tokenizer import Tokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineParts:
    """What ``build_engine`` assembles: the engine runs these and owns them; nobody else reaches into them."""

    config: EngineConfig
    clock: Callable[[], float]  # the one clock every policy reads: virtual in a simulation
    backend: ExecutionBackend  # the model (or a cost model), its device and dtype
    model_config: ModelConfig
    tokenizer: Tokenizer | None
    max_model_len: int
    kv: KVCacheManager
    structured: StructuredOutputManager
    runner: Runner
    scheduler: Scheduler


class LLMEngine:
    def __init__(self, parts: EngineParts, programs: ProgramManager) -> None:
        """Use ``build_engine``. ``programs``: the policy's program layer, already wired into the scheduler's
        hooks (admission, preemption, relief, finish)."""
        self.config = parts.config
        self.clock = parts.clock
        self.backend = parts.backend
        self.device, self.dtype = parts.backend.device, parts.backend.dtype
        self.model_config = parts.model_config
        self.tokenizer = parts.tokenizer
        self.max_model_len = parts.max_model_len
        self.kv_manager = parts.kv
        self.structured = parts.structured
        self.runner = parts.runner
        self.scheduler = parts.scheduler
        self.programs = programs
        self.policy = programs.policy
        self._seqs: dict[str, Sequence] = {}
        self._counter = itertools.count()
        self._rng = random.Random(self.config.seed)  # seeds of unseeded sampled requests
        self._stats = StatsWindow()
        self.last_plan: SchedulerOutput | None = None  # None: the last step could schedule nothing
        self.tracer: EngineTracer | None = None
        # build_engine's, when it loaded the model (None for a given backend, as a simulation's)
        self.model_load: ModelLoad | None = None
        self._load_traced: list[TraceSink] = []  # the sinks that have the model_load event

    def trace_to(self, sink: TraceSink | None) -> None:
        """Emit the engine's trace events (docs/tracing.md) into ``sink`` (``None``: stop), first its
        ``model_load`` (once per sink: the model loads before a run is recorded). Call it between steps (on the
        engine's thread when an ``AsyncEngine`` runs it)."""
        self.tracer = (
            None if sink is None else EngineTracer(sink, self.clock, self.scheduler, self.kv_manager)
        )
        self.programs.on_kv_event = None if self.tracer is None else self.tracer.kv
        if sink is not None and self.model_load is not None and not any(s is sink for s in self._load_traced):
            self._load_traced.append(sink)
            sink.emit(self.model_load.event())

    def trace_offset(self) -> float | None:
        """The tracer's engine-clock-to-wall-clock offset (``None`` without a tracer): a caller that adds its
        own events to the same trace uses it, so one clock orders them all."""
        return None if self.tracer is None else self.tracer.offset

    def stats(self) -> EngineStats:
        """The engine's state now and its counters since the previous call (returned and reset, as vLLM's
        ``make_stats``)."""
        return self._stats.take(self.scheduler, self.kv_manager, self.programs)

    def load(self) -> EngineLoad:
        """The queue and the free KV blocks now, for a router (cheap: no counters are taken)."""
        s, kv = self.scheduler, self.kv_manager
        return EngineLoad(len(s.waiting), len(s.running), kv.num_free_blocks, kv.num_blocks)

    def held_programs(self) -> tuple[frozenset[str], frozenset[str]]:
        """The programs whose KV waits for their next turn: pinned on the GPU, and parked in CPU memory."""
        pins = self.kv_manager.pins
        parked = frozenset(p for p, info in pins.items() if info.parked)
        return frozenset(pins) - parked, parked

    @property
    def compiled(self) -> bool:
        """Whether the model runs a compiled forward (``compiled.py``), not eager."""
        return getattr(self.runner, "compiled", None) is not None

    def next_timer(self, after: float | None = None) -> float | None:
        """When the program layer next has work without a request: the earliest pin expiry on the engine's
        clock (later than ``after`` when given); ``None`` when there is none."""
        times = [i.expires_at for i in self.kv_manager.pins.values() if after is None or i.expires_at > after]
        return min(times) if times else None

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
        seed = None  # the runner's sampler seeds the request's generator with it
        if not params.greedy:
            seed = params.seed if params.seed is not None else self._rng.getrandbits(63)
        seq = Sequence(
            rid,
            ids,
            params,
            prompt=text,
            arrival_time=self.clock() if arrival_time is None else arrival_time,  # the clock policies read
            hints=hints,
            seed=seed,
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
        return self._end(seq, FinishReason.ABORT)

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
        """One batch: a snapshot of each request that got a token or finished. A failing forward pass fails the
        requests of its batch (``finish_reason == "error"``), not the engine."""
        started = self.clock()
        if self.programs.before_step():
            self.scheduler.resort()
        plan = self.scheduler.schedule()
        self.last_plan = None if plan.is_empty else plan  # None: the waiting requests are blocked on memory
        if plan.is_empty:
            return []
        sampled = self._run(plan)
        if isinstance(sampled, BaseException):
            return self._fail_batch([chunk.seq for chunk in plan.chunks], sampled)
        self.programs.account(plan)
        return self._after_step(plan, self.scheduler.update(plan, sampled, self.clock()), started)

    def _run(self, plan: SchedulerOutput) -> RunnerOutput | BaseException:
        """The runner's tokens, or the error of a failed forward pass."""
        try:
            return self.runner.run(plan, self.kv_manager.take_pending_copies())
        except Exception as exc:  # noqa: BLE001 - the batch fails, the engine keeps serving
            log.exception("step failed for %d requests", len(plan.chunks))
            return exc

    def _after_step(self, plan: SchedulerOutput, update: StepUpdate, started: float) -> list[RequestOutput]:
        for chunk in plan.chunks:
            if chunk.seq.admitted_time is None:
                chunk.seq.admitted_time = started
        for seq in update.finished:
            del self._seqs[seq.request_id]
        if self.tracer is not None:
            self.tracer.after_step(plan, update, started)
        return [RequestOutput.of(seq) for seq in update.outputs]

    def fail_all(self, exc: BaseException) -> list[RequestOutput]:
        """Fail every request in flight (the engine itself hit an error outside a forward pass)."""
        return self._fail_batch(list(self._seqs.values()), exc)

    def _fail_batch(self, seqs: list[Sequence], exc: BaseException) -> list[RequestOutput]:
        """Fail the requests, then drop every unreferenced cached block: blocks registered for this step
        (reloads from the CPU tier) may never have received their contents."""
        outputs = []
        for seq in seqs:
            seq.error = exc
            self._seqs.pop(seq.request_id, None)
            outputs.append(self._end(seq, FinishReason.ERROR))
        self.kv_manager.reset_prefix_cache()
        return outputs

    def _end(self, seq: Sequence, reason: FinishReason) -> RequestOutput:
        """A request ended outside the scheduler's update (aborted, or its batch failed)."""
        self.scheduler.finish(seq, reason, self.clock())
        if self.tracer is not None:
            self.tracer.finished(seq, reason.value)
        return RequestOutput.of(seq)

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
