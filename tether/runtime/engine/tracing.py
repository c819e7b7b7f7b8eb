"""The engine's trace events (docs/tracing.md, "Engine events"): the model's load, requests queued, admitted,
each prefill chunk, the first token and the end; KV pin events; per-step counters. Emitted on the engine's thread into a
thread-safe sink, routed by the request's program id (``_engine`` for engine-wide counters and requests of no
program). Times are converted from the engine's clock to the wall clock the executor uses, so one clock orders
every event of a run."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tether.runtime.tracing.events import ENGINE_PROGRAM, TraceEvent
from tether.runtime.tracing.writer import TraceSink

if TYPE_CHECKING:
    from tether.kvcache import KVCacheManager
    from tether.runtime.engine.scheduler import Scheduler, SchedulerOutput, StepUpdate
    from tether.runtime.engine.sequence import Sequence


def _pid(seq: Sequence) -> str:
    return seq.hints.program_id or ENGINE_PROGRAM


@dataclass(frozen=True)
class ModelLoad:
    """How the engine's model was loaded: ``started`` and ``ended`` are wall-clock seconds (``time.time()``)
    around building the engine on it (weights, the compiled forward's warm-up, the KV cache); ``device`` and
    ``dtype`` as torch names them (``cuda:0``, ``bfloat16``)."""

    model: str
    device: str
    dtype: str
    compiled: bool
    compile_s: float
    started: float
    ended: float

    def event(self) -> TraceEvent:
        """The ``model_load`` span event (program ``_engine``): ``start`` .. ``ts`` is the load."""
        attrs = {
            "model": self.model,
            "device": self.device,
            "dtype": self.dtype,
            "compiled": self.compiled,
            "compile_s": self.compile_s,
            "duration_s": max(0.0, self.ended - self.started),
        }
        return TraceEvent(
            "model_load", ENGINE_PROGRAM, self.ended, None, attrs, min(self.started, self.ended)
        )


class EngineTracer:
    """An observer of the engine's steps (``after_step``), its queue (``queued``) and its requests that end
    outside a step (``finished``); the program layer hands it KV events (``kv``)."""

    def __init__(
        self, sink: TraceSink, clock: Callable[[], float], scheduler: Scheduler, kv: KVCacheManager
    ) -> None:
        self.sink = sink
        self.clock = clock
        self.scheduler = scheduler
        self.kv_manager = kv
        self.offset = time.time() - clock()  # engine clock -> wall clock
        self._admitted: dict[str, float] = {}  # request id -> when it was first admitted (engine clock)
        self._counters: dict[str, int] | None = None

    def wall(self, t: float) -> float:
        return t + self.offset

    def _emit(
        self, kind: str, pid: str, node: str | None, attrs: dict[str, Any], start: float | None = None
    ) -> None:
        ts = self.wall(self.clock())
        self.sink.emit(TraceEvent(kind, pid, ts, node, attrs, None if start is None else self.wall(start)))  # type: ignore[arg-type]

    def queued(self, seq: Sequence) -> None:
        rid = seq.request_id
        self._emit("llm_queued", _pid(seq), rid, {"request_id": rid, "prompt_tokens": seq.num_prompt_tokens})

    def after_step(self, plan: SchedulerOutput, update: StepUpdate, started: float) -> None:
        """A step that ran: its chunks, each sequence's first token and end in plan order, then the counters."""
        self.step(plan, started)
        first = {id(seq) for seq in update.first_tokens}
        finished = {id(seq) for seq in update.finished}
        for seq in update.outputs:
            if id(seq) in first:
                self.first_token(seq)
            if id(seq) in finished:
                self.finished(seq, seq.finish_reason.value)
        self.counters(self.scheduler, self.kv_manager, plan.num_batched_tokens, started)

    def step(self, plan: SchedulerOutput, started: float) -> None:
        """The scheduled chunks of a step that ran: first admissions and prefill chunks (call after it ran)."""
        for chunk in plan.chunks:
            seq = chunk.seq
            rid = seq.request_id
            if rid not in self._admitted:
                self._admitted[rid] = started
                attrs = {
                    "request_id": rid,
                    "cached_tokens": seq.num_cached_tokens,
                    "queued_s": max(0.0, started - seq.arrival_time),
                }
                self._emit("llm_admitted", _pid(seq), rid, attrs, seq.arrival_time)
            prompt = seq.num_prompt_tokens
            if chunk.start < prompt:
                tokens = min(chunk.end, prompt) - chunk.start
                attrs = {"request_id": rid, "tokens": tokens, "position": chunk.start}
                self._emit("llm_prefill", _pid(seq), rid, attrs, started)

    def first_token(self, seq: Sequence) -> None:
        rid = seq.request_id
        self._emit("llm_first_token", _pid(seq), rid, {"request_id": rid})

    def finished(self, seq: Sequence, reason: str) -> None:
        rid = seq.request_id
        admitted = self._admitted.pop(rid, None)
        first = seq.first_token_time
        attrs = {
            "request_id": rid,
            "input_tokens": seq.num_prompt_tokens,
            "cached_tokens": seq.num_cached_tokens,
            "output_tokens": seq.num_output_tokens,
            "finish_reason": reason,
            "queued_s": None if admitted is None else max(0.0, admitted - seq.arrival_time),
            "ttft_s": None if first is None else first - seq.arrival_time,
        }
        self._emit("llm_finished", _pid(seq), rid, attrs, seq.arrival_time)

    def kv(self, pid: str, action: str, attrs: dict[str, Any]) -> None:
        self._emit("kv", pid, None, {"action": action, **attrs})

    def counters(self, scheduler: Scheduler, kv: KVCacheManager, tokens: int, started: float) -> None:
        """Per-step counters, emitted when they changed since the last emitted step (an idle or steady engine
        writes nothing)."""
        counters = {
            "running": len(scheduler.running),
            "waiting": len(scheduler.waiting),
            "blocks_used": kv.num_used_blocks,
            "blocks_pinned": kv.num_pinned_blocks,
            "blocks_cached": kv.num_cached_blocks,
            "blocks_free": kv.num_free_blocks,
            "blocks_cpu": kv.num_cpu_blocks - kv.num_free_cpu_blocks,
        }
        if counters == self._counters:
            return
        self._counters = counters
        self._emit("engine_step", ENGINE_PROGRAM, None, {**counters, "tokens": tokens}, started)
