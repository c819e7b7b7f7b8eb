"""``infercept``: at each tool call choose discard, preserve or swap by least memory waste (InferCept, ICML 2024),
in block-seconds:

    preserve: the blocks sit idle for the tool's expected duration          E[T] * blocks
    discard:  the running batch's memory waits while the context recomputes  T_prefill(context) * used blocks
    swap:     the batch waits for the copy out and back                      2 * T_copy(blocks) * used blocks

Admission is request FCFS with a resumed turn keeping its program's arrival. Under pressure, preserved programs
are swapped out (dropped if the CPU tier is full), the one expected back last first.

Swap budget per step (``swap_budget``), the released code's ``SchedulerV2._set_max_ragged_batch``
(WukLab/InferCept, vllm/core/scheduler_v2.py): with ``F`` free GPU tokens and a 384-token step,

    swap-in tokens  = a * 384 + b + F / 2          a = -0.3297119141, b = 93.994140625 (their profile)
    swap-out tokens = (1 + a) * 384 + b - F / 2

each floored to whole blocks and at least 0: about 20 blocks of 16 tokens per step in all, swap-out when memory
is short, swap-in when it is free. The engine's program layer carries the budget out
(tether/runtime/programs/layer.py)."""

from __future__ import annotations

from tether.runtime.policies.base import (
    Decision,
    Drop,
    Free,
    Park,
    ParkPin,
    Pin,
    PolicyContext,
    PressureAction,
    TurnEnd,
)
from tether.runtime.policies.vllm import VLLMPolicy

SWAP_A = -0.3297119141  # t_sin slope, scheduler_v2.py _set_max_ragged_batch
SWAP_B = 93.994140625  # t_offset
SWAP_STEP_TOKENS = 384  # mlimit: the step's token limit the swap is hidden under


def swap_budget_blocks(free_blocks: int, block_size: int) -> tuple[int, int]:
    """(swap-in, swap-out) blocks one step may copy, InferCept's rule for ``free_blocks`` free GPU blocks."""
    free_tokens = free_blocks * block_size
    t_in = SWAP_A * SWAP_STEP_TOKENS + SWAP_B + free_tokens / 2
    t_out = (1 + SWAP_A) * SWAP_STEP_TOKENS + SWAP_B - free_tokens / 2
    return max(0, int(t_in // block_size)), max(0, int(t_out // block_size))


class InferCeptPolicy(VLLMPolicy):
    name = "infercept"
    cpu_tier = offload_on_evict = True  # its own swap, plus LMCache's offload on evict (``infercept:tier=off``)
    published_cpu_tier = True  # swapping needs host memory

    def swap_budget(self, ctx: PolicyContext) -> tuple[int, int]:
        return swap_budget_blocks(ctx.kv.num_free_blocks, ctx.kv.block_size)

    def priority(self, seq, ctx: PolicyContext) -> tuple:
        state = ctx.programs.get(seq.hints.program_id) if seq.hints.program_id else None
        return (state.arrival if state else seq.arrival_time, seq.seq_index)

    def on_turn_end(self, end: TurnEnd, ctx: PolicyContext) -> Decision:
        expected = ctx.tool_stats.model_for(end.next_tool).mean
        used = max(ctx.kv.num_used_blocks, end.blocks)
        waste = {
            "preserve": expected * end.blocks,
            "discard": ctx.reprefill_s(end.context_tokens) * used,
            "swap": 2 * ctx.copy_s(end.blocks) * used
            if ctx.kv.num_cpu_blocks >= end.blocks
            else float("inf"),
        }
        choice = min(waste, key=waste.get)
        if choice == "preserve":
            return Pin(max(1.0, 10 * expected))
        if choice == "swap":
            return Park(max(0.0, expected - ctx.copy_s(end.blocks)))
        return Free()

    def relieve(self, ctx: PolicyContext, blocks_needed: int, requester=None) -> list[PressureAction]:
        return park_or_drop_furthest(ctx, blocks_needed)


def park_or_drop_furthest(ctx: PolicyContext, blocks_needed: int) -> list[PressureAction]:
    """Give up GPU pins whose program is expected back last (Belady's rule on predicted next use): park each
    in CPU memory when it fits there, else drop it."""
    now = ctx.now
    gpu_pins = [pid for pid, info in ctx.kv.pins.items() if not info.parked]

    def expected_back(pid: str) -> float:
        state = ctx.programs.get(pid)
        return state.predicted_return if state and state.predicted_return is not None else now

    actions: list[PressureAction] = []
    freed = 0
    for pid in sorted(gpu_pins, key=expected_back, reverse=True):
        if freed >= blocks_needed:
            break
        freed += ctx.kv.pin_exclusive_blocks(pid)
        actions.append(ParkPin(pid) if ctx.kv.can_park(pid) else Drop(pid))
    return actions
