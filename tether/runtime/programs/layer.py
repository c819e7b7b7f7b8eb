"""The program layer of the engine: carries out a scheduling policy's decisions on the KV cache.

add_request ─► on_request   (the program's next turn arrived: its tool is no longer running)
admission   ─► on_admit     (the program's next turn took its blocks: its pin ends, counted as a hit)
preemption  ─► on_preempt   (the turn waits again; swap preemption for policies that ask for it)
shortage    ─► relieve      (the policy gives up pins: drop or park; when is the policy's ``relieve_pins``)
turn ends   ─► on_finish    (free / pin / park, before the sequence's blocks are freed; a failed or aborted
                             turn ends its program)
every step  ─► before_step  (expired pins end or park; parked programs due back are prefetched)
after a step ─► account     (attained service: first-time computed tokens and engine seconds per program)

A policy with ``swap_budget(ctx) -> (in_blocks, out_blocks)`` (InferCept) limits the blocks this layer copies
to and from CPU memory per step: each step adds its budget to a credit capped at one step's budget; a copy may
start while the credit is positive and takes the whole copy from it (a debt paid by later steps, as a copy
spread over steps would be). A park that does not fit stays on the GPU; under pressure a pin whose park does
not fit is dropped (InferCept delays the turn that needs the memory instead; here no step runs while every turn
waits, so the budget would not refill and the replay would stall).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tether.kvcache import KVCacheManager, PrefixMatch
from tether.runtime.engine.scheduler import SchedulerOutput
from tether.runtime.engine.sequence import FinishReason, Sequence, TurnOutcome
from tether.runtime.policies.base import (
    Drop,
    Free,
    Park,
    ParkPin,
    Pin,
    PolicyContext,
    SchedulingPolicy,
    TurnEnd,
)
from tether.runtime.programs.table import ProgramTable

PARKED_TTL_S = 600.0  # a parked program whose next turn never comes gives its host memory back after this


@dataclass
class ProgramStats:
    pins_created: int = 0
    pins_hit: int = 0
    pins_expired: int = 0
    pins_dropped: int = 0
    parked_pins: int = 0
    swapped_preemptions: int = 0
    swaps_over_budget: int = 0


class PolicyPriority:
    """Adapts a policy's ``priority(seq, ctx)`` to the scheduler's ``priority(seq)``."""

    def __init__(self, policy: SchedulingPolicy, ctx: PolicyContext) -> None:
        self.name = policy.name
        self._policy = policy
        self._ctx = ctx

    def priority(self, seq: Sequence) -> tuple:
        return self._policy.priority(seq, self._ctx)


class ProgramManager:
    def __init__(
        self,
        policy: SchedulingPolicy,
        ctx: PolicyContext,
        kv: KVCacheManager,
        turn_outcome: Callable[[Sequence], TurnOutcome] | None = None,
    ) -> None:
        """``turn_outcome``: what a finished turn's output says (the tool it called, whether the program ends);
        default the submitter's hints (a static DAG's plan). Replay reveals the trace's tool, a server parses
        the output's tool call."""
        self.policy = policy
        self.turn_outcome = turn_outcome or (lambda seq: TurnOutcome.from_hints(seq.hints))
        self.ctx = ctx
        self.kv = kv
        self.programs: ProgramTable = ctx.programs
        self.stats = ProgramStats()
        self._prefetch_failed_at: dict[str, int] = {}  # pid -> free GPU blocks when its prefetch last failed
        self._swap_pins: set[str] = set()  # pins made by swap preemption, not by a turn end
        self._step = 0
        self._pressure_step = -2  # the last step in which memory had to be relieved
        self._step_started = ctx.now
        self._swap_credit = [0, 0]  # blocks that may still be copied in / out (negative: debt)
        self._budgeted = policy.swap_budget(ctx) is not None  # the policy limits the copies per step
        # (program id, action, attrs) for the trace: pin_created / pin_hit / pin_expired / pin_dropped / parked /
        # prefetched / swap_preempt / unpinned (see docs/tracing.md); None: nobody listens
        self.on_kv_event: Callable[[str, str, dict[str, Any]], None] | None = None
        self._resort = False  # a priority input changed (a prefix group's first admission): re-sort the queues

    def _kv_event(self, pid: str, action: str, **attrs: Any) -> None:
        if self.on_kv_event is not None:
            info = self.kv.pins.get(pid)
            self.on_kv_event(pid, action, {"blocks": info.num_blocks if info is not None else 0, **attrs})

    # -- hooks ----------------------------------------------------------------------------------------------
    def on_request(self, seq: Sequence) -> None:
        pid = seq.hints.program_id
        if pid is None:
            return
        state = self.programs.open(pid, seq.arrival_time)
        state.tool = state.tool_started = state.predicted_return = None
        state.turns_seen += 1
        state.waiting_since = seq.arrival_time

    def on_admit(self, seq: Sequence, prefix: PrefixMatch) -> None:
        pid = seq.hints.program_id
        state = self.programs.get(pid) if pid is not None else None
        if state is not None:
            now = self.ctx.now
            if state.waiting_since is not None:
                state.wait_s += max(0.0, now - state.waiting_since)
                state.waiting_since = None
            if state.promoted:  # a starving program was served: its wait counts afresh
                state.promoted, state.wait_s = False, 0.0
            if not seq.admitted and state.turns_seen > 1 and not self.kv.has_pin(pid):
                self.programs.observe_evicted_queue_delay(now - seq.arrival_time)  # Continuum's T
            group = seq.hints.prefix_group
            if group is not None and group not in state.prefix_groups:
                state.prefix_groups.add(group)  # its shared prefix is computed from now on
                self._resort = True
        if pid is not None and self.kv.has_pin(pid):
            if prefix.num_tokens > 0 and pid not in self._swap_pins:
                self.stats.pins_hit += 1
                self._kv_event(pid, "pin_hit", tokens=prefix.num_tokens, request_id=seq.request_id)
            else:
                self._kv_event(pid, "unpinned", reason="admitted", request_id=seq.request_id)
            self._swap_pins.discard(pid)
            self.kv.unpin(pid)

    def take_resort(self) -> bool:
        """Whether the waiting queue must be re-sorted before the next schedule (asked once per step)."""
        resort, self._resort = self._resort, False
        return resort

    def on_preempt(self, seq: Sequence) -> None:
        """Swap preemption, for policies with ``swap_on_preempt``: the victim's computed full blocks are pinned
        and parked in CPU memory, so its re-admission copies them back instead of recomputing them."""
        pid = seq.hints.program_id
        state = self.programs.get(pid) if pid is not None else None
        if state is not None:
            state.waiting_since = self.ctx.now
        if not self.policy.swap_on_preempt or pid is None or self.kv.has_pin(pid):
            return
        if not self.kv.pin(pid, seq.request_id, self.ctx.now + PARKED_TTL_S):
            return  # no full computed block
        if self.kv.can_park(pid):
            self._swap_pins.add(pid)
            self._park(pid)
            self.stats.swapped_preemptions += 1
            self._kv_event(pid, "swap_preempt", request_id=seq.request_id)
        else:
            self.kv.unpin(pid)

    def relieve(self, blocks_needed: int, requester: Sequence | None = None) -> bool:
        self._pressure_step = self._step
        acted = False
        for action in self.policy.relieve(self.ctx, blocks_needed, requester):
            if not self.kv.has_pin(action.pin_id):
                continue
            if (
                isinstance(action, ParkPin)
                and self.kv.can_park(action.pin_id)
                and self._may_swap(action.pin_id)
            ):
                self._park(action.pin_id)
            elif isinstance(action, (Drop, ParkPin)):
                self._kv_event(action.pin_id, "pin_dropped")
                self.kv.unpin(action.pin_id)
                self.stats.pins_dropped += 1
            acted = True
        return acted

    def on_finish(self, seq: Sequence, reason: FinishReason) -> None:
        """A sequence finishes, before it frees its blocks: a turn that ended normally goes to ``on_turn_end``;
        a failed or aborted one ends its program's pin (nothing is kept for it)."""
        if reason in (FinishReason.STOP, FinishReason.LENGTH):
            self.on_turn_end(seq, self.turn_outcome(seq))
        elif seq.hints.program_id is not None:
            self.end_program(seq.hints.program_id)

    def on_turn_end(self, seq: Sequence, outcome: TurnOutcome | None = None) -> None:
        """Called when a turn finishes normally, before its sequence frees its blocks. ``outcome``: what the
        turn's output says (default: the request's hints)."""
        hints = seq.hints
        pid = hints.program_id
        if pid is None:
            return
        outcome = outcome or TurnOutcome.from_hints(hints)
        state = self.programs.open(pid, seq.arrival_time)
        now = self.ctx.now
        if outcome.last_turn:
            self.end_program(pid)
            return
        state.tool, state.tool_started = outcome.next_tool, now
        model = self.ctx.tool_stats.model_for(outcome.next_tool)
        state.predicted_return = now + model.quantile(0.5)
        end = TurnEnd(
            pid,
            outcome.next_tool,
            hints.remaining_turns,
            seq.num_computed_tokens,
            seq.num_computed_tokens // self.kv.block_size,
            now,
        )
        decision = self.policy.on_turn_end(end, self.ctx)
        if isinstance(decision, Free):
            self._unpin(pid, "freed")
            return
        ttl = decision.ttl_s if isinstance(decision, Pin) else PARKED_TTL_S
        if not self.kv.pin(pid, seq.request_id, now + ttl):  # nothing pinnable: no full computed block
            self._unpin(pid, "nothing_pinnable")
            return
        self.stats.pins_created += 1
        self._kv_event(pid, "pin_created", ttl_s=ttl, tool=outcome.next_tool, request_id=seq.request_id)
        if isinstance(decision, Park):
            state.predicted_return = now + decision.prefetch_in_s + self.ctx.copy_s(end.blocks)
            if self.kv.can_park(pid) and self._may_swap(pid):
                self._park(pid)

    def end_program(self, pid: str) -> None:
        self._prefetch_failed_at.pop(pid, None)
        self._swap_pins.discard(pid)
        self._unpin(pid, "program_end")
        self.programs.close(pid)

    def _unpin(self, pid: str, reason: str) -> None:
        """Release the program's pin, if it has one, with an ``unpinned`` event saying why."""
        if self.kv.has_pin(pid):
            self._kv_event(pid, "unpinned", reason=reason)
            self.kv.unpin(pid)

    def before_step(self) -> bool:
        """Expire pins, then prefetch the parked programs the policy says are due, unless memory had to be
        relieved in the previous step: a prefetch then only takes memory that the next admission would park
        again (a park/prefetch cycle every step). True when the queues must be re-sorted first (a priority
        input changed, or the policy's priorities change with time)."""
        self._expire_and_prefetch()
        return self.take_resort() or self.policy.resort_each_step

    def _expire_and_prefetch(self) -> None:
        self._step += 1
        now = self.ctx.now
        self._step_started = now
        budget = self.policy.swap_budget(self.ctx)
        if budget is not None:
            for i, blocks in enumerate(budget):
                self._swap_credit[i] = min(self._swap_credit[i] + blocks, blocks)
        keep_waiting = self.policy.keep_pin_while_waiting
        for pid in self.kv.expired_pins(now):
            state = self.programs.get(pid)
            if keep_waiting and state is not None and state.waiting_since is not None:
                continue  # the next turn has arrived: the pin ends at its admission (or under pressure)
            info = self.kv.pins[pid]
            if self.policy.park_on_expiry and not info.parked and self.kv.can_park(pid):
                self._park(pid)
            else:
                self._kv_event(pid, "pin_expired")
                self.kv.unpin(pid)
                self.stats.pins_expired += 1
        if self._pressure_step >= self._step - 1:
            return
        for pid in self.policy.prefetches(self.ctx):
            if not self.kv.has_pin(pid):
                continue
            free = self.kv.num_free_blocks
            if free <= self._prefetch_failed_at.get(pid, -1):
                continue  # it failed with at least this much free memory; checking again is O(context)
            if self.kv.can_prefetch(pid) and self._may_swap(pid, into_gpu=True):
                self._prefetch_failed_at.pop(pid, None)
                self.kv.prefetch(pid)
                self.kv.set_pin_expiry(pid, now + PARKED_TTL_S)
                self._kv_event(pid, "prefetched")
            else:
                self._prefetch_failed_at[pid] = free

    def account(self, plan: SchedulerOutput) -> None:
        """Attained service per program, for least-attained-service orders: tokens computed for the first time
        (positions past the program's high-water mark, so a recompute after preemption or eviction is not
        service again) and the engine seconds of the steps it ran in (once per step)."""
        step_s = max(0.0, self.ctx.now - self._step_started)
        served: set[str] = set()
        for chunk in plan.chunks:
            pid = chunk.seq.hints.program_id
            state = self.programs.get(pid) if pid else None
            if state is None:
                continue
            state.attained_tokens += max(0, chunk.end - max(chunk.start, state.computed_high))
            state.computed_high = max(state.computed_high, chunk.end)
            if pid not in served:
                served.add(pid)
                state.service_s += step_s

    def _may_swap(self, pid: str, *, into_gpu: bool = False) -> bool:
        """Whether the swap budget (if the policy has one) lets the pin's blocks be copied now; takes them."""
        if not self._budgeted:
            return True
        i = 0 if into_gpu else 1
        if self._swap_credit[i] <= 0:
            self.stats.swaps_over_budget += 1
            return False
        info = self.kv.pins[pid]
        self._swap_credit[i] -= len(info.cpu_block_ids) if into_gpu else len(info.block_ids)
        return True

    def _park(self, pid: str) -> None:
        self._prefetch_failed_at.pop(pid, None)
        self.kv.park(pid)
        self.kv.set_pin_expiry(pid, self.ctx.now + PARKED_TTL_S)
        self.stats.parked_pins += 1
        self._kv_event(pid, "parked")
