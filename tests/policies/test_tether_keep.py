"""Tether's keep / park / drop rule under memory pressure (tether/runtime/policies/keep.py), on a scripted cache."""

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


def test_shadow_price_keeps_pins_worth_more_than_the_queue_pays_for_memory():
    """``keep=value``: pins leave in value order (re-prefill saved per block-second held) only while worth less
    than the queue's price. 2-block pins (8 tokens) reload in 0.008 s: bimodal (15 s away) is worth 0.008 / (2 *
    15) per block-second, slow (8 s) 0.008 / (2 * 8), quick (due now) 0.008 / (2 * 0.001)."""
    from dataclasses import replace

    from tether.runtime.policies.keep import shadow_price, value_density

    kv, ctx = scenario(cpu_blocks=8)
    assert value_density(ctx, "bimodal") == pytest.approx(0.008 / 30)
    assert value_density(ctx, "slow") == pytest.approx(0.008 / 16)
    assert value_density(ctx, "quick") == pytest.approx(4.0)
    assert give_up(ctx, 6, "value", displace=False, price=0.0004) == [ParkPin("bimodal")]
    assert give_up(ctx, 6, "value", displace=False) == [ParkPin("bimodal"), ParkPin("slow"), ParkPin("quick")]

    waiting, running = [3], [1]
    ctx = replace(ctx, waiting_turns=lambda: waiting[0], running_turns=lambda: running[0])
    head = object()
    assert shadow_price(ctx, 6, head) == pytest.approx(0.5)  # 3 waiting turns, 6 blocks short
    assert shadow_price(ctx, 6, None) == float("inf")  # a running turn must grow: the alternative is preemption
    running[0] = 0
    assert shadow_price(ctx, 6, head) == float("inf")  # nothing runs: nothing else will free memory
    kv.check_integrity()


def test_keep_value_pins_without_a_time_to_live_and_prices_the_queue():
    from dataclasses import replace

    from tests.policies.test_baselines import turn_end
    from tether.runtime.policies import get_policy
    from tether.runtime.policies.base import Pin
    from tether.runtime.policies.tether import PIN_HORIZON_S, TetherOptions

    kv, ctx = scenario(cpu_blocks=8)
    policy = get_policy("tether")  # keep=value is the default
    assert policy.on_turn_end(turn_end("slow"), ctx) == Pin(PIN_HORIZON_S)
    assert get_policy("tether:keep=ttl").on_turn_end(turn_end("slow"), ctx) == Pin(10.0)  # p95 of one sample
    ctx = replace(ctx, waiting_turns=lambda: 1, running_turns=lambda: 1)
    # 1 waiting turn, 6 blocks short: 0.167 per block-second; quick (4.0) stays and the head waits
    assert policy.relieve(ctx, 6, requester=object()) == [ParkPin("bimodal"), ParkPin("slow")]
    assert policy.relieve(ctx, 6, requester=None) == [ParkPin("bimodal"), ParkPin("slow"), ParkPin("quick")]
    # the price holds in any victim order: residual puts quick last too, lru first (pinned longest ago: bimodal)
    assert get_policy("tether:victim=lru").relieve(ctx, 6, object()) == [ParkPin("bimodal"), ParkPin("slow")]
    assert get_policy("tether:keep=ttl").relieve(ctx, 6, object()) == [
        ParkPin("bimodal"),
        ParkPin("slow"),
        ParkPin("quick"),
    ]
    with pytest.raises(ValueError, match="keep 'forever' unknown; known: ttl, value"):
        TetherOptions.parse("keep=forever")
    kv.check_integrity()
