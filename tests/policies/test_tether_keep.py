"""Tether's keep / park / drop rule under memory pressure (runtime/policies/keep.py), on a scripted cache."""

from __future__ import annotations

import pytest

from tests.policies.test_baselines import Clock, context
from tether.kvcache import KVCacheManager
from tether.runtime.policies.base import Drop, ParkPin
from tether.runtime.policies.keep import give_up, residual_s, victim_order
from tether.tools.durations import ToolDurationStats


def pinned(kv: KVCacheManager, pid: str, blocks: int, base: int, expires: float = 100.0) -> None:
    """A program whose last turn left ``blocks`` full blocks, pinned."""
    tokens = [base + i for i in range(blocks * kv.block_size)]
    kv.allocate(pid, len(tokens))
    kv.cache_blocks(pid, tokens, len(tokens))
    kv.pin(pid, pid, expires)
    kv.free(pid)


def scenario(cpu_blocks: int):
    """Three pinned programs, 2 blocks each. ``quick`` (a 0.1 s tool) began 1 s ago; ``slow`` (a 10 s tool) began
    2 s ago; ``bimodal`` (half 0.1 s, half 20 s) began 5 s ago: past its median, so likely a long call."""
    clock = Clock()
    stats = ToolDurationStats(min_samples=1)
    for tool, secs in [("quick", 0.1), ("slow", 10.0), ("bimodal", 0.1), ("bimodal", 20.0)]:
        stats.observe(tool, secs)
    kv = KVCacheManager(16, 4, clock=clock, num_cpu_blocks=cpu_blocks)
    ctx = context(kv, stats, clock)
    clock.t = 10.0
    for i, (pid, started) in enumerate([("quick", 9.0), ("slow", 8.0), ("bimodal", 5.0)]):
        clock.t = started  # pins are made when the turn ends
        pinned(kv, pid, 2, base=100 * i)
        state = ctx.programs.open(pid, 0.0)
        state.tool, state.tool_started = pid, started
        model = stats.model_for(pid)
        state.predicted_return = started + model.quantile(0.5)
    clock.t = 10.0
    return kv, ctx


def test_residual_prediction_conditions_on_the_time_already_run():
    _, ctx = scenario(8)
    # bimodal: the plain median is the short mode; after 5 s only the 20 s mode is left: 15 s to go.
    assert residual_s(ctx, "bimodal", 0.0) == pytest.approx(0.1)
    assert residual_s(ctx, "bimodal", 5.0) == pytest.approx(15.0)
    assert residual_s(ctx, "quick", 1.0) == 0.0  # past every sample: due now


def test_victim_orders():
    kv, ctx = scenario(8)
    pids = ["quick", "slow", "bimodal"]
    assert victim_order(ctx, pids, "lru") == ["bimodal", "slow", "quick"]  # pinned longest ago first
    # median from the start: quick 9.1, slow 18, bimodal 5 + 0.1 (the median of two samples is the lower one)
    assert victim_order(ctx, pids, "furthest") == ["slow", "quick", "bimodal"]
    # given the time run: quick now, slow 10 + 8 = 18 -> 8 s, bimodal 15 s
    assert victim_order(ctx, pids, "residual") == ["bimodal", "slow", "quick"]
    # equal sizes and linear reload: value follows 1 / wait
    assert victim_order(ctx, pids, "value") == ["bimodal", "slow", "quick"]
    kv.check_integrity()


def test_park_while_the_cpu_tier_has_room_then_drop():
    kv, ctx = scenario(cpu_blocks=2)
    actions = give_up(ctx, blocks_needed=4, victim="residual", displace=False)
    assert actions == [ParkPin("bimodal"), Drop("slow")]
    kv.check_integrity()


def test_displace_drops_a_parked_pin_predicted_back_later():
    kv, ctx = scenario(cpu_blocks=2)
    kv.park("bimodal")  # the CPU tier is full with the program predicted back last
    actions = give_up(ctx, blocks_needed=2, victim="residual", displace=True)
    assert actions == [Drop("bimodal"), ParkPin("slow")]
    assert give_up(ctx, blocks_needed=2, victim="residual", displace=False) == [Drop("slow")]
    kv.check_integrity()


def test_prefetch_waits_while_a_turn_waits_for_admission():
    """A parked program due back is prefetched only while no turn waits (``calm``), else at once."""
    from dataclasses import replace

    from tether.runtime.policies import get_policy

    kv, ctx = scenario(cpu_blocks=8)
    kv.park("slow")
    ctx.programs.get("slow").predicted_return = 9.0  # due
    waiting = [0]
    ctx = replace(ctx, waiting_prefill_tokens=lambda: waiting[0])
    calm, eager = get_policy("tether:prefetch=on"), get_policy("tether:prefetch=on:calm=off")
    assert get_policy("tether").prefetches(ctx) == []  # prefetch is off by default
    assert calm.prefetches(ctx) == eager.prefetches(ctx) == ["slow"]
    waiting[0] = 100
    assert calm.prefetches(ctx) == [] and eager.prefetches(ctx) == ["slow"]
    kv.check_integrity()
