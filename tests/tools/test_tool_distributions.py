"""EmpiricalDistribution and ExponentialPrior answer with exact values on hand-made samples."""

from __future__ import annotations

import math

import pytest

from tether.tools import DurationModel, EmpiricalDistribution, ExponentialPrior, ToolStatsError

SAMPLES = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]  # sorted: 1 1 2 3 4 5 6 9


def filled(xs: list[float], max_samples: int = 1024) -> EmpiricalDistribution:
    dist = EmpiricalDistribution(max_samples)
    dist.extend(xs)
    dist.check_integrity()
    return dist


def test_empirical_queries_are_exact() -> None:
    dist = filled(SAMPLES)
    assert dist.samples() == (1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 9.0)
    assert dist.support() == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 9.0)
    assert (len(dist), dist.count) == (8, 8)
    assert [dist.cdf(t) for t in (0.5, 1.0, 1.5, 4.0, 8.99, 9.0, 100.0)] == [
        0,
        0.25,
        0.25,
        0.625,
        0.875,
        1,
        1,
    ]
    assert dist.cdf(math.inf) == 1.0
    assert dist.mean == 31 / 8


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0.0, 1.0), (0.125, 1.0), (0.25, 1.0), (0.26, 2.0), (0.5, 3.0), (0.75, 5.0), (0.9, 9.0), (1.0, 9.0)],
)
def test_empirical_quantile_is_nearest_rank(q: float, expected: float) -> None:
    assert filled(SAMPLES).quantile(q) == expected


def test_nearest_rank_is_not_fooled_by_float_error() -> None:
    dist = filled([float(i) for i in range(1, 101)])
    assert 0.07 * 100 > 7  # 7.000000000000001: a plain ceil would give rank 8
    assert (dist.quantile(0.07), dist.quantile(0.14), dist.quantile(0.29)) == (7.0, 14.0, 29.0)


def test_bounded_memory_drops_the_oldest_while_count_grows() -> None:
    dist = filled([5.0, 1.0, 4.0, 2.0, 3.0], max_samples=3)
    assert dist.samples() == (2.0, 3.0, 4.0)
    assert (len(dist), dist.count) == (3, 5)
    dist.add(0.5)
    assert dist.samples() == (0.5, 2.0, 3.0)
    assert (len(dist), dist.count) == (3, 6)
    dist.check_integrity()


def test_bounded_memory_with_duplicates_removes_one_copy() -> None:
    dist = filled([1.0, 1.0, 2.0, 1.0], max_samples=3)
    assert dist.samples() == (1.0, 1.0, 2.0)
    assert dist.support() == (1.0, 2.0)
    dist.add(7.0)
    assert dist.samples() == (1.0, 2.0, 7.0)
    dist.check_integrity()


def test_empty_distribution() -> None:
    dist = EmpiricalDistribution()
    assert (len(dist), dist.count, dist.cdf(1.0), dist.support(), dist.samples()) == (0, 0, 0.0, (), ())
    with pytest.raises(ToolStatsError, match="quantile of an empty"):
        dist.quantile(0.5)
    with pytest.raises(ToolStatsError, match="mean of an empty"):
        _ = dist.mean


@pytest.mark.parametrize("bad", [-0.001, math.nan, math.inf, -math.inf, "1.0", None, True])
def test_empirical_rejects_bad_samples(bad: object) -> None:
    dist = EmpiricalDistribution()
    with pytest.raises(ToolStatsError):
        dist.add(bad)  # type: ignore[arg-type]
    assert (len(dist), dist.count) == (0, 0)


@pytest.mark.parametrize("q", [-0.1, 1.1, math.nan])
def test_quantile_level_out_of_range(q: float) -> None:
    with pytest.raises(ToolStatsError, match="not in \\[0, 1\\]"):
        filled([1.0]).quantile(q)
    with pytest.raises(ToolStatsError, match="not in \\[0, 1\\]"):
        ExponentialPrior().quantile(q)


@pytest.mark.parametrize("max_samples", [0, -3, 1.5, True])
def test_max_samples_must_be_positive_int(max_samples: object) -> None:
    with pytest.raises(ToolStatsError, match="max_samples"):
        EmpiricalDistribution(max_samples)  # type: ignore[arg-type]


def test_copy_is_independent() -> None:
    dist = filled([1.0, 2.0], max_samples=2)
    snap = dist.copy()
    dist.add(3.0)
    assert snap.samples() == (1.0, 2.0) and snap.count == 2
    assert dist.samples() == (2.0, 3.0) and dist.count == 3
    snap.add(0.0)
    assert snap.samples() == (0.0, 2.0)  # the copy kept the arrival order too


def test_empirical_round_trip_keeps_arrival_order() -> None:
    dist = filled([5.0, 1.0, 4.0, 2.0], max_samples=3)
    back = EmpiricalDistribution.from_dict(dist.to_dict())
    assert back.to_dict() == {"max_samples": 3, "count": 4, "samples": [1.0, 4.0, 2.0]}
    back.add(9.0)  # evicts 1.0, the oldest
    assert back.samples() == (2.0, 4.0, 9.0)


@pytest.mark.parametrize("tau", [0.0, 0.1, 0.5, 1.0, 2.0, 7.5, 30.0])
@pytest.mark.parametrize("mean_s", [1.0, 2.0, 0.25])
def test_prior_cdf_is_exponential(tau: float, mean_s: float) -> None:
    prior = ExponentialPrior(mean_s)
    assert prior.cdf(tau) == pytest.approx(1 - math.exp(-tau / mean_s), rel=1e-12, abs=1e-15)
    assert prior.cdf(-1.0) == 0.0


def test_prior_quantile_mean_support() -> None:
    prior = ExponentialPrior(2.0)
    assert prior.mean == 2.0
    assert prior.quantile(0.0) == 0.0
    assert prior.quantile(0.5) == pytest.approx(2.0 * math.log(2.0))
    assert prior.quantile(1.0) == math.inf
    support = prior.support()
    assert len(support) == 7 and list(support) == sorted(set(support))
    assert support[2] == pytest.approx(2.0 * math.log(2.0))
    for q in (0.1, 0.5, 0.9, 0.99):
        assert prior.cdf(prior.quantile(q)) == pytest.approx(q)
    assert ExponentialPrior() == ExponentialPrior(1.0)


@pytest.mark.parametrize("mean_s", [0.0, -1.0, math.inf, math.nan, "1"])
def test_prior_mean_must_be_positive_finite(mean_s: object) -> None:
    with pytest.raises(ToolStatsError, match="prior mean"):
        ExponentialPrior(mean_s)  # type: ignore[arg-type]


def test_both_satisfy_the_protocol() -> None:
    assert isinstance(filled([1.0]), DurationModel)
    assert isinstance(ExponentialPrior(), DurationModel)
