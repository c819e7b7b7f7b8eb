"""``tether``: Continuum's idea, using what it cannot see. The rule (docs/scheduling.md):

1. Admission: programs whose KV is resident (pinned) first, then the program with the fewest remaining turns
   (the DAG/request says how many; SRPT on programs), then program arrival. A finite queue cannot starve.
2. Turn end: always keep the KV (pin it) with a TTL of the tool's high quantile: holding costs nothing until
   memory is short, and the pressure rule below decides lazily. The last turn frees.
3. Memory pressure: give up the pins whose program is predicted back last (Belady's rule, with the tool's
   median duration as the prediction), parking them in CPU memory when it fits (no re-prefill later) and
   dropping them only when it does not.
4. Prefetch: a parked program's blocks come back to GPU memory once its tool is predicted to return (median,
   less the copy time) and the GPU has room without giving up another pin.
5. Expiry: a pin that outlives its TTL is parked rather than dropped when the CPU tier has room.
"""

from __future__ import annotations

from runtime.policies.base import Decision, Free, Pin, PolicyContext, PressureAction, TurnEnd
from runtime.policies.infercept import park_or_drop_furthest
from runtime.policies.vllm import VLLMPolicy

TTL_QUANTILE = 0.95
MIN_TTL_S = 1.0


class TetherPolicy(VLLMPolicy):
    name = "tether"
    cpu_tier = True
    park_on_expiry = True
    swap_on_preempt = True

    def priority(self, seq, ctx: PolicyContext) -> tuple:
        pid = seq.hints.program_id
        state = ctx.programs.get(pid) if pid else None
        if state is None:
            return (1, 0, seq.arrival_time, seq.seq_index)
        resident = 0 if ctx.kv.has_pin(pid) and not ctx.kv.pins[pid].parked else 1
        remaining = seq.hints.remaining_turns if seq.hints.remaining_turns is not None else 1 << 30
        return (resident, remaining, state.arrival, seq.seq_index)

    def on_turn_end(self, end: TurnEnd, ctx: PolicyContext) -> Decision:
        if end.remaining_turns == 0:
            return Free()
        model = ctx.tool_stats.model_for(end.next_tool)
        return Pin(max(MIN_TTL_S, model.quantile(TTL_QUANTILE)))

    def relieve(self, ctx: PolicyContext, blocks_needed: int) -> list[PressureAction]:
        return park_or_drop_furthest(ctx, blocks_needed)

    def prefetches(self, ctx: PolicyContext) -> list[str]:
        now = ctx.now
        due = []
        for pid, info in ctx.kv.pins.items():
            state = ctx.programs.get(pid)
            if not info.parked or state is None or state.predicted_return is None:
                continue
            if now >= state.predicted_return - ctx.copy_s(len(info.cpu_block_ids)):
                due.append(pid)
        return due
