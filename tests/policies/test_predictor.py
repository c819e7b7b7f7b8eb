"""The remaining-work predictor: exact Gittins indices on small samples, the prior, bounded memory."""

from __future__ import annotations

import json

import pytest

from tether.runtime.policies import get_policy
from tether.runtime.policies.predictor import RemainingWorkPredictor
from tether.runtime.policies.tether import TetherOptions


def fitted(*totals: int) -> RemainingWorkPredictor:
    p = RemainingWorkPredictor(min_samples=1)
    for t in totals:
        p.observe(t)
    return p


def test_gittins_index_by_hand():
    p = fitted(2, 10)
    # a = 0: d = 2 gives 1/2 done over E[min(S, 2)] = 2 -> 0.25; d = 10 gives 1 / 6 -> 0.1667. Best 0.25.
    assert p.gittins(0) == pytest.approx(0.25)
    # a = 2: only the 10-turn program is left: 1 / 8.
    assert p.gittins(2) == pytest.approx(1 / 8)
    # a = 10: older than every sample: the index of one more turn than the longest (1 / 11).
    assert p.gittins(10) == pytest.approx(1 / 11)


def test_gittins_with_ties_and_mean_residual():
    p = fitted(3, 3, 5)
    # a = 1: remaining 2, 2, 4. d = 2: 2 done / (2 + 2 + 2) = 1/3; d = 4: 3 / 8. Best 3/8.
    assert p.gittins(1) == pytest.approx(3 / 8)
    assert p.expected_remaining(1) == pytest.approx((3 + 3 + 5) / 3 - 1)
    assert p.expected_remaining(5) is None


def test_surviving_the_short_mode_lowers_the_index_then_age_raises_it():
    """Many short programs and a few long ones: past the short mode, a program is known to be long (its index
    falls, as least attained service would have it); then it nears its end (the index rises again)."""
    p = fitted(*([2] * 8 + [40] * 2))
    assert p.gittins(0) == pytest.approx(8 / (2 * 10))
    assert p.gittins(2) == pytest.approx(1 / 38)
    assert p.gittins(10) == pytest.approx(1 / 30)


def test_prior_stands_in_until_enough_programs_finish():
    p = RemainingWorkPredictor(prior=[4, 4], min_samples=3)
    assert p.samples() == [4, 4]
    p.observe(10)
    assert p.samples() == [4, 4, 10]
    p.observe(10)
    p.observe(12)
    assert p.samples() == [10, 10, 12]  # the prior is gone once three programs have finished
    assert p.num_observed == 3


def test_memory_is_bounded_newest_kept():
    p = RemainingWorkPredictor(max_samples=3, min_samples=1)
    for t in (1, 2, 3, 4, 5):
        p.observe(t)
    assert p.samples() == [3, 4, 5]


def test_no_information_gives_equal_indices():
    p = RemainingWorkPredictor()
    assert p.gittins(0) == p.gittins(7) == 0.0


def test_shipped_prior_loads_and_leaves_out_the_trace_being_evaluated():
    p = RemainingWorkPredictor.with_shipped_prior()
    assert len(p.samples()) == 122 and min(p.samples()) >= 1
    assert len(RemainingWorkPredictor.with_shipped_prior(exclude="terminal_bench_agents").samples()) == 5
    assert len(RemainingWorkPredictor.with_shipped_prior(exclude="swe_smith_agents").samples()) == 117
    assert len(RemainingWorkPredictor.with_shipped_prior(exclude="elsewhere").samples()) == 122


def test_tether_replay_fits_no_prior_on_its_own_workload(tmp_path):
    from tests.cli.test_cli_replay import write_workload
    from tests.replay.test_replay import PROGRAMS
    from tether.cli import main

    out = tmp_path / "r.json"
    workload = write_workload(tmp_path / "terminal_bench_agents.jsonl", PROGRAMS)
    args = ["replay", "--workload", str(workload), "--simulate", "--kv-blocks", "64", "--rate", "2", "--draw", "0"]
    assert main([*args, "--policies", "tether", "--quiet", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["settings"]["turns_prior_exclude"] == "terminal_bench_agents"


def test_tether_options_parse_and_errors_name_the_option():
    assert TetherOptions.parse("order=las:park=off") == TetherOptions(order="las", park=False)
    assert get_policy("tether").swap_on_preempt and get_policy("tether:swap=off").swap_on_preempt is False
    assert not TetherOptions().prefetch and TetherOptions.parse("prefetch=on").prefetch
    assert TetherOptions().calm and not TetherOptions.parse("calm=off").calm
    assert get_policy("tether:order=fcfs").name == "tether:order=fcfs"
    assert get_policy("tether").offload_on_evict and not get_policy("tether:offload=off").offload_on_evict
    assert get_policy("tether").relieve_pins == "eager"
    assert get_policy("tether:relieve=when_idle").relieve_pins == "when_idle"
    with pytest.raises(ValueError, match="relieve 'later'"):
        TetherOptions.parse("relieve=later")
    with pytest.raises(ValueError, match="'bogus'"):
        TetherOptions.parse("bogus=on")
    with pytest.raises(ValueError, match="order 'sjf'"):
        TetherOptions.parse("order=sjf")
    with pytest.raises(ValueError, match="pins='maybe'"):
        TetherOptions.parse("pins=maybe")


def test_static_remaining_turns_order_programs_unless_switched_off():
    """Where a static DAG says a program has fewer calls left, tether serves it first (a known size); with
    ``static=off`` it ranks both by the learned index alone (equal here: same turns seen), then by arrival."""
    from tests.policies.test_baselines import GREEDY, context
    from tether.runtime.engine.sequence import ProgramHints, Sequence

    ctx = context()
    for pid, arrival in [("long", 0.0), ("short", 1.0)]:
        ctx.programs.open(pid, arrival)

    def request(pid: str, remaining: int, index: int) -> Sequence:
        hints = ProgramHints(program_id=pid, remaining_turns=remaining)
        return Sequence(f"{pid}#0", [1, 2, 3], GREEDY, arrival_time=float(index), seq_index=index, hints=hints)

    long, short = request("long", 9, 0), request("short", 1, 1)
    policy, blind = get_policy("tether"), get_policy("tether:static=off")
    assert sorted([long, short], key=lambda s: policy.priority(s, ctx)) == [short, long]
    assert sorted([long, short], key=lambda s: blind.priority(s, ctx)) == [long, short]
