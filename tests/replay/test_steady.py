"""Steady-state evaluation: reproducible draws and seeds, the measurement window, capacity (the command's JSON:
tests/cli/test_cli_replay.py)."""

from __future__ import annotations

import statistics
from dataclasses import replace

import pytest

from tests.replay.test_replay import PROGRAMS
from tether.runtime.costs import H100_LLAMA31_8B
from tether.runtime.engine.config import EngineConfig
from tether.runtime.replay.runner import ReplaySettings, measured_window, solo_jct
from tether.runtime.replay.stats import best_baseline, bootstrap_interval, paired_ratio
from tether.runtime.replay.steady import draw_programs, run_seeds
from tether.runtime.replay.sweep import capacity, knee


def settings(**kw) -> ReplaySettings:
    engine = EngineConfig(model="tiny", num_kv_blocks=32, max_num_batched_tokens=512)
    return ReplaySettings(
        ("lmcache", "tether"), engine, rate=4.0, simulate=True, cost_model=H100_LLAMA31_8B, **kw
    )


def test_draws_are_reproducible_distinct_and_renamed():
    a, b, c = draw_programs(PROGRAMS, 12, 0), draw_programs(PROGRAMS, 12, 0), draw_programs(PROGRAMS, 12, 1)
    assert a == b != c
    assert len({p.program_id for p in a}) == 12
    assert all(p.program_id.rsplit("~", 1)[1] == str(i) for i, p in enumerate(a))
    assert {p.turns for p in a} <= {p.turns for p in PROGRAMS}
    with pytest.raises(ValueError, match="--draw"):
        draw_programs(PROGRAMS, 0, 0)


def test_measured_window_leaves_out_both_ends():
    assert measured_window(10, 0.1) == range(1, 9)
    assert measured_window(10, 0.0) == range(0, 10)
    assert measured_window(5, 0.1) == range(0, 5)
    with pytest.raises(ValueError, match="window"):
        measured_window(10, 0.5)


def test_seeds_are_reproducible_and_summarised():
    s = settings(window=0.1)
    one = run_seeds(s, PROGRAMS, [0, 1], draw=10, solo=True)
    two = run_seeds(s, PROGRAMS, [0, 1], draw=10, solo=True)
    def strip(doc):
        return [[{k: v for k, v in r.items() if k != "wall_s"} for r in e["results"]] for e in doc["per_seed"]]
    assert strip(one) == strip(two)
    assert [e["seed"] for e in one["per_seed"]] == [0, 1]
    for row in one["per_seed"][0]["results"]:
        assert row["programs"] == 10 and row["programs_measured"] == 8 and row["kv_leaked_blocks"] == 0
    lm = one["summary"][0]
    jcts = [e["results"][0]["avg_jct_s"] for e in one["per_seed"]]
    assert lm["label"] == "lmcache" and lm["avg_jct_s"] == {
        "mean": sum(jcts) / 2,
        "min": min(jcts),
        "max": max(jcts),
    }
    assert one["summary"][-1]["policy"] == "solo"


def test_solo_counts_the_window_and_reuses_repeated_programs():
    s = settings(window=0.25)
    drawn = draw_programs(PROGRAMS, 8, 3)
    memo: dict = {}
    bound = solo_jct(s, drawn, memo)
    assert len(memo) == len({p.turns for p in drawn[2:6]})
    alone = {p.turns: solo_jct(replace(s, window=0.0), [p]) for p in PROGRAMS}
    assert bound == pytest.approx(sum(alone[p.turns] for p in drawn[2:6]) / 4)


def test_capacity_is_the_last_rate_within_the_slowdown():
    def point(rate, jct):
        return {
            "rate": rate,
            "summary": [{"label": "x", "avg_jct_s": {"mean": jct}}, {"label": "solo (bound)"}],
        }

    at = [point(0.1, 10.0), point(0.2, 19.0), point(0.3, 25.0), point(0.4, 15.0)]
    assert capacity(at, 10.0, 2.0) == {"x": 0.2}  # 0.4 is under 2x again, but 0.3 was not
    assert capacity(at, 10.0, 1.5) == {"x": 0.1}


def test_the_knee_is_where_the_strongest_baseline_crosses_the_slowdown():
    def point(rate, lm, co):
        rows = [{"label": "lmcache", "avg_jct_s": {"mean": lm}}, {"label": "continuum", "avg_jct_s": {"mean": co}}]
        return {"rate": rate, "summary": [*rows, {"label": "solo (bound)"}]}

    at = [point(0.1, 11.0, 10.5), point(0.2, 16.0, 13.0), point(0.3, 30.0, 19.0)]
    caps = capacity(at, 10.0, 1.5)
    assert caps == {"lmcache": 0.1, "continuum": 0.2}
    k = knee(at, 10.0, 1.5, caps)  # continuum: 13 at 0.2, 19 at 0.3; 15 is a third of the way
    assert k["baseline"] == "continuum" and k["between"] == [0.2, 0.3]
    assert k["rate"] == pytest.approx(0.2 + 0.1 * 2 / 6)
    assert knee(at[:2], 10.0, 1.5, capacity(at[:2], 10.0, 1.5)) == {
        "baseline": "continuum",
        "rate": None,
        "between": None,
    }


def test_ratios_pair_up_seed_by_seed_with_a_bootstrap_interval():
    def entry(tether, lmcache, continuum):
        jcts = {"tether": tether, "lmcache": lmcache, "continuum": continuum}
        return {"results": [{"label": k, "avg_jct_s": v} for k, v in jcts.items()]}

    # seed 1 is twice as loaded; per seed tether is 0.9x and 0.8x continuum, the better baseline on average
    per_seed = [entry(9.0, 11.0, 10.0), entry(16.0, 22.0, 20.0)]
    assert best_baseline(per_seed) == "continuum"
    r = paired_ratio(per_seed, "tether", "continuum")
    assert r.per_seed == pytest.approx((0.9, 0.8)) and r.mean == pytest.approx(0.85)
    assert (r.lo, r.hi) == pytest.approx((0.8, 0.9))  # two seeds: the resampled means are 0.8, 0.85 or 0.9
    assert paired_ratio(per_seed, "tether", "continuum") == r  # a fixed RNG: reproducible
    assert bootstrap_interval([2.0]) == (2.0, 2.0)
    wide = bootstrap_interval([1.0, 0.5, 0.9, 1.2, 0.7])
    assert 0.5 < wide[0] < statistics.mean([1.0, 0.5, 0.9, 1.2, 0.7]) < wide[1] < 1.2
