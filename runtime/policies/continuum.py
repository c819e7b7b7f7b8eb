"""``continuum``: pin a program's KV for the TTL of the paper's CDF rule; pinned programs are admitted first, then
program FCFS; under memory pressure pins are dropped latest-program-first.
``continuum-fixed``: the released code's simplification: a 2 s TTL when the tool's running mean is under 2 s.

Where we had to guess (the paper's public description is not exact): the loss cost is re-prefill time plus the
queueing delay of the prefill work waiting now, weighted by ``1 + expected remaining turns``, where Continuum
cannot see the remaining turns and estimates them from the mean turn count of finished programs."""

from __future__ import annotations

from runtime.policies.base import Decision, Drop, Free, Pin, PolicyContext, PressureAction, TurnEnd
from runtime.policies.ttl import best_ttl
from runtime.policies.vllm import VLLMPolicy


class ContinuumPolicy(VLLMPolicy):
    name = "continuum"

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
        state = ctx.programs.get(end.program_id)
        turns_done = state.turns_seen if state else 1
        remaining = max(0.0, ctx.programs.mean_turns() - turns_done)
        loss = (ctx.reprefill_s(end.context_tokens) + ctx.queue_delay_s()) * (1.0 + remaining)
        return best_ttl(ctx.tool_stats.model_for(end.next_tool), loss, ctx.memory_fraction(end.blocks))

    def relieve(self, ctx: PolicyContext, blocks_needed: int) -> list[PressureAction]:
        """Drop pins, latest program first, until enough blocks would be reclaimable."""
        pins = sorted(ctx.kv.pins, key=lambda pid: _arrival(ctx, pid), reverse=True)
        actions: list[PressureAction] = []
        freed = 0
        for pid in pins:
            if freed >= blocks_needed:
                break
            freed += ctx.kv.pin_exclusive_blocks(pid)
            actions.append(Drop(pid))
        return actions


class ContinuumFixedPolicy(ContinuumPolicy):
    name = "continuum-fixed"

    def ttl(self, end: TurnEnd, ctx: PolicyContext) -> float:
        """Running mean of the tool's observed durations; before any, the prior's mean (1 s)."""
        stats = ctx.tool_stats
        known = end.next_tool is not None and stats.count(end.next_tool) > 0
        mean = stats.mean(end.next_tool) if known else stats.prior.mean
        return 2.0 if mean < 2.0 else 0.0


def _arrival(ctx: PolicyContext, pid: str) -> float:
    state = ctx.programs.get(pid)
    return state.arrival if state else 0.0
