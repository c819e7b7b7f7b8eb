"""``continuum`` (Li et al., arXiv 2511.02230) and ``continuum-fixed`` (its released code's TTL).

- Admission: programs holding a pin first, then program FCFS (``priority``).
- Turn end: pin the program's KV for ``tau* = argmax_tau P(tau, f) * (T * eta + reload(context)) - tau``
  (``tether/runtime/policies/ttl.py``). ``T``: the sliding average of the queueing delay of follow-up turns whose KV
  was not kept (``ProgramTable.evicted_queue_delay``); ``eta``: the correlation term
  (``ProgramTable.memoryfulness``, 1 until it can be estimated); ``reload``: the cost model's prefill time of
  the context. ``continuum-fixed``: 2 s when the tool's own running mean is at most 2 s (an unseen tool counts
  as 0 s), no pin when the next tool is unknown.
- Pins are given up only when nothing else can run (``relieve_pins = "when_idle"``: the scheduler first
  preempts other running turns), the pin that would expire last first; a pin is not expired while its
  program's next turn waits for admission.

Sources and choices: docs/scheduling.md."""

from __future__ import annotations

from tether.runtime.policies.base import Decision, Drop, Free, Pin, PolicyContext, PressureAction, TurnEnd
from tether.runtime.policies.ttl import best_ttl
from tether.runtime.policies.vllm import VLLMPolicy

FIXED_THRESHOLD_S = 2.0  # FIXED_THRESHOLD_CONTINUUM in the released vllm/v1/core/estimate_with_func.py


class ContinuumPolicy(VLLMPolicy):
    name = "continuum"
    cpu_tier = offload_on_evict = True  # LMCache's tier, which the paper's form lacks (``continuum:tier=off``)
    published_cpu_tier = False
    relieve_pins = "when_idle"
    keep_pin_while_waiting = True

    def priority(self, seq, ctx: PolicyContext) -> tuple:
        pid = seq.hints.program_id
        state = ctx.programs.get(pid) if pid else None
        if state is None:
            return (1, seq.arrival_time, seq.seq_index)
        pinned = 0 if ctx.kv.has_pin(pid) else 1
        return (pinned, state.arrival, seq.seq_index)

    def on_turn_end(self, end: TurnEnd, ctx: PolicyContext) -> Decision:
        ttl = self.ttl(end, ctx)
        return Pin(ttl) if ttl > 0 else Free()

    def ttl(self, end: TurnEnd, ctx: PolicyContext) -> float:
        return best_ttl(ctx.tool_stats.model_for(end.next_tool), self.benefit_s(end, ctx))

    def benefit_s(self, end: TurnEnd, ctx: PolicyContext) -> float:
        """``T * eta + reload(context)``: what keeping the context saves when the program comes back in time."""
        programs = ctx.programs
        return programs.evicted_queue_delay() * programs.memoryfulness() + ctx.reprefill_s(end.context_tokens)

    def relieve(self, ctx: PolicyContext, blocks_needed: int, requester=None) -> list[PressureAction]:
        """Drop pins, the one that would expire last first, until enough blocks would be reclaimable."""
        pins = sorted(ctx.kv.pins.items(), key=lambda item: item[1].expires_at, reverse=True)
        actions: list[PressureAction] = []
        freed = 0
        for pid, _ in pins:
            if freed >= blocks_needed:
                break
            freed += ctx.kv.pin_exclusive_blocks(pid)
            actions.append(Drop(pid))
        return actions


class ContinuumFixedPolicy(ContinuumPolicy):
    name = "continuum-fixed"

    def ttl(self, end: TurnEnd, ctx: PolicyContext) -> float:
        """The released ``ToolCallEstimator.set_up_pin``: no tool, no pin; else 2 s unless the tool's running
        mean (over all its observations, from the first) exceeds 2 s."""
        if end.next_tool is None:
            return 0.0
        mean = ctx.tool_stats.running_mean(end.next_tool) or 0.0
        return 0.0 if mean > FIXED_THRESHOLD_S else FIXED_THRESHOLD_S
