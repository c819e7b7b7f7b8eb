"""What stays on the GPU, what is parked in CPU memory and what is dropped, when memory is short.

``give_up(ctx, blocks_needed, victim, displace)`` orders the GPU pins by a victim rule and gives them up until
enough blocks would be reclaimable: each is parked when the CPU tier can hold it, else dropped. With
``displace``, a parked pin predicted back later than the one being given up is dropped to make room for it
(the CPU tier is bounded: it should hold the programs that return soonest).

Victim rules (all use only the present and the past: the tool now running, how long it has run, per-tool
duration statistics, the pin's size):

- ``lru``: the pin made longest ago first (LMCache's and vLLM's least-recently-used order, per program);
- ``furthest``: the program predicted back last, predicting the tool's median duration from its start;
- ``residual``: the same, predicting the median of the tool's remaining time given how long it has already
  run (a tool past its median is likely a long one: for a bimodal tool the plain median keeps predicting
  "any moment now");
- ``value``: the least re-prefill time saved per block per second held first: ``reload(context) / (blocks *
  expected residual)``.

With a ``price`` (``tether:keep=value``, the default), only pins whose ``value`` is below it are given up, in the
victim order: the queue's shadow price of memory (``shadow_price``). A pin worth more stays, and the waiting turn
waits for memory that running turns free.
"""

from __future__ import annotations

import math

from tether.runtime.policies.base import Drop, ParkPin, PolicyContext, PressureAction

VICTIMS = ("lru", "furthest", "residual", "value")


def expected_back(ctx: PolicyContext, pid: str, rule: str) -> float:
    """When the program's next turn is predicted to arrive (absolute time)."""
    now = ctx.now
    state = ctx.programs.get(pid)
    if state is None or state.tool_started is None:
        return now
    if rule == "furthest":
        return state.predicted_return if state.predicted_return is not None else now
    return now + residual_s(ctx, state.tool, now - state.tool_started)


def residual_s(ctx: PolicyContext, tool: str | None, elapsed: float, q: float = 0.5) -> float:
    """The ``q`` quantile of the tool's remaining time, given it has run ``elapsed`` seconds."""
    stats = ctx.tool_stats
    done = stats.cdf(tool, elapsed)
    if done >= 1.0:
        return 0.0
    return max(0.0, stats.quantile(tool, done + q * (1.0 - done)) - elapsed)


def value_density(ctx: PolicyContext, pid: str) -> float:
    """What keeping a pin is worth: the re-prefill seconds it saves per block per second it is expected to be
    held (the median of its tool's remaining time given how long it has run; the learned distribution)."""
    blocks = max(1, ctx.kv.pins[pid].num_blocks)
    wait = max(1e-3, expected_back(ctx, pid, "residual") - ctx.now)
    return ctx.reprefill_s(blocks * ctx.kv.block_size) / (blocks * wait)


def shadow_price(ctx: PolicyContext, blocks_needed: int, requester: object | None) -> float:
    """The queue's price of memory, in JCT-seconds per block-second: admission is head-of-line, so every
    waiting turn waits one more second for each second the head's ``blocks_needed`` blocks are withheld.
    Infinite (give up whatever it takes) for a running turn that must grow (the alternative is a preemption)
    and when nothing runs (no running turn will free memory)."""
    if requester is None or ctx.running_turns() == 0:
        return math.inf
    return max(1, ctx.waiting_turns()) / max(1, blocks_needed)


def victim_order(ctx: PolicyContext, pids: list[str], rule: str) -> list[str]:
    """Pins in the order they should be given up."""
    pins = ctx.kv.pins
    if rule == "lru":
        return sorted(pids, key=lambda pid: pins[pid].created_at)
    if rule == "value":
        return sorted(pids, key=lambda pid: value_density(ctx, pid))
    return sorted(pids, key=lambda pid: expected_back(ctx, pid, rule), reverse=True)


def give_up(
    ctx: PolicyContext,
    blocks_needed: int,
    victim: str,
    displace: bool,
    eligible: set[str] | None = None,
    price: float = math.inf,
) -> list[PressureAction]:
    """Pins to give up (``eligible``: the GPU pins that may be, default all; ``price``: only pins whose
    ``value_density`` is below it)."""
    kv = ctx.kv
    gpu = [pid for pid, info in kv.pins.items() if not info.parked and (eligible is None or pid in eligible)]
    parked: list[str] | None = None  # parked pins, latest back first: ordered only when the tier is short
    back: dict[str, float] = {}
    cpu_free = kv.num_free_cpu_blocks
    actions: list[PressureAction] = []
    freed = 0
    for pid in victim_order(ctx, gpu, victim):
        if freed >= blocks_needed:
            break
        if price < math.inf and value_density(ctx, pid) >= price:
            continue  # worth more than the memory is to the queue: it stays
        freed += kv.pin_exclusive_blocks(pid)
        need = kv.pins[pid].num_blocks  # at most this many CPU blocks (fewer if some are there already)
        if displace and cpu_free < need:
            if parked is None:
                parked = [p for p, info in kv.pins.items() if info.parked]
                back = {p: expected_back(ctx, p, "residual") for p in parked}
                parked.sort(key=back.__getitem__, reverse=True)
            mine = expected_back(ctx, pid, "residual")
            while parked and back[parked[0]] > mine and cpu_free < need:
                other = parked.pop(0)
                cpu_free += kv.pins[other].num_blocks
                actions.append(Drop(other))
        if cpu_free >= need:
            cpu_free -= need
            actions.append(ParkPin(pid))
        else:
            actions.append(Drop(pid))
    return actions
