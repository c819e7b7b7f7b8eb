"""Paired ratios over seeds, with a bootstrap interval.

Every seed of a steady-state run is its own draw of programs and its own arrivals, and every policy replays the
same draw and arrivals, so a policy's figure and a baseline's pair up seed by seed. The ratio is computed per
seed (``policy / baseline`` average JCT), and the seeds' ratios are summarised by their mean and a 95% percentile
bootstrap interval of that mean (seeds resampled with replacement; a fixed RNG seed, so a report is
reproducible). With five seeds the interval is coarse; it is still the honest width of what five draws show.

"The best baseline" at a point is whichever of ``BEST_OF`` present there has the lower mean average JCT over the
seeds (issue 22: tether against the better of lmcache and continuum with its CPU tier, per point).
"""

from __future__ import annotations

import random
import statistics
from dataclasses import asdict, dataclass

from tether.runtime.replay.driver import TRUE_TURNS

BEST_OF = ("lmcache", "continuum")
RESAMPLES = 10_000


@dataclass(frozen=True)
class PairedRatio:
    baseline: str
    mean: float
    lo: float  # the 95% interval of the mean
    hi: float
    per_seed: tuple[float, ...]

    def as_dict(self) -> dict:
        return asdict(self)


def bootstrap_interval(
    values: list[float], level: float = 0.95, resamples: int = RESAMPLES
) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of ``values``; a single value is its own interval."""
    if not values:
        raise ValueError("no values to bootstrap")
    if len(values) == 1:
        return values[0], values[0]
    rng = random.Random(0)
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    tail = (1.0 - level) / 2
    return means[int(tail * resamples)], means[min(resamples - 1, int((1.0 - tail) * resamples))]


def paired_ratio(per_seed: list[dict], label: str, baseline: str) -> PairedRatio:
    """``label``'s average JCT over ``baseline``'s, seed by seed (``per_seed``: ``run_seeds``' entries)."""
    ratios = []
    for entry in per_seed:
        rows = {r["label"]: r for r in entry["results"]}
        ratios.append(rows[label]["avg_jct_s"] / rows[baseline]["avg_jct_s"])
    lo, hi = bootstrap_interval(ratios)
    return PairedRatio(baseline, statistics.mean(ratios), lo, hi, tuple(ratios))


def find_label(labels: list[str], policy: str) -> str | None:
    """``policy``'s row label among ``labels``: the name itself, or with ``+true-turns`` (``--hints oracle``)."""
    for label in (policy, policy + TRUE_TURNS):
        if label in labels:
            return label
    return None


def best_baseline(per_seed: list[dict]) -> str | None:
    """Of ``BEST_OF``, the label with the lowest mean average JCT over the seeds; None if none ran."""
    labels = [r["label"] for r in per_seed[0]["results"]]
    present = [label for b in BEST_OF if (label := find_label(labels, b)) is not None]
    if not present:
        return None

    def mean_jct(label: str) -> float:
        return statistics.mean(
            next(r for r in e["results"] if r["label"] == label)["avg_jct_s"] for e in per_seed
        )

    return min(present, key=mean_jct)
