"""Tool-duration distributions: a bounded empirical one and the exponential cold-start prior.

Both answer the ``DurationModel`` queries the scheduler asks when a turn ends in a tool call: the chance the
tool is done within ``tau`` seconds (``cdf``), the time by which it is done with probability ``q``
(``quantile``), its ``mean``, and a short sorted list of candidate time-to-live values (``support``).
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from tether.tools.errors import ToolStatsError

PRIOR_SUPPORT_QUANTILES: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)


@runtime_checkable
class DurationModel(Protocol):
    """What the scheduler may ask about a tool's duration, in seconds.

    Rules every implementation keeps: queries never change the model; ``cdf`` is non-decreasing in ``tau``
    and lies in [0, 1]; ``quantile(q)`` takes q in [0, 1] and is non-decreasing in q; ``support()`` is a
    sorted tuple of distinct non-negative durations (the candidate TTLs), empty only for an empty model.
    """

    def cdf(self, tau: float) -> float: ...

    def quantile(self, q: float) -> float: ...

    @property
    def mean(self) -> float: ...

    def support(self) -> tuple[float, ...]: ...


def check_duration(seconds: Any, *, tool: str | None = None) -> float:
    """Return ``seconds`` as a float if it is a finite number >= 0, else raise ``ToolStatsError``."""
    who = "observation" if tool is None else f"tool {tool!r}"
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise ToolStatsError(f"{who}: duration {seconds!r} is not a number of seconds", tool=tool)
    if not math.isfinite(seconds) or seconds < 0:
        raise ToolStatsError(f"{who}: duration {seconds!r} s is not a finite number >= 0", tool=tool)
    return float(seconds)


def _check_q(q: float) -> float:
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0.0 <= q <= 1.0:
        raise ToolStatsError(f"quantile level {q!r} is not in [0, 1]")
    return float(q)


def _check_tau(tau: float) -> float:
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or math.isnan(tau):
        raise ToolStatsError(f"cdf argument {tau!r} is not a number of seconds")
    return float(tau)


class EmpiricalDistribution:
    """The last ``max_samples`` observed durations; older ones are forgotten so recent behaviour wins.

    ``_arrivals`` holds the kept samples in arrival order (oldest left), ``_sorted`` the same multiset sorted
    for queries. ``count`` is every observation ever added; ``len()`` is how many are kept. Not thread-safe:
    ``ToolDurationStats`` guards it with its lock and hands out copies.
    """

    def __init__(self, max_samples: int = 1024):
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
            raise ToolStatsError(f"max_samples must be an int >= 1, got {max_samples!r}")
        self.max_samples = max_samples
        self._arrivals: deque[float] = deque()
        self._sorted: list[float] = []
        self._count = 0

    def add(self, x: float) -> None:
        """Keep ``x`` (finite, >= 0); past ``max_samples`` kept, drop the oldest kept sample."""
        x = check_duration(x)
        self._arrivals.append(x)
        insort(self._sorted, x)
        self._count += 1
        if len(self._arrivals) > self.max_samples:
            oldest = self._arrivals.popleft()
            del self._sorted[bisect_right(self._sorted, oldest) - 1]

    def extend(self, xs: Iterable[float]) -> None:
        for x in xs:
            self.add(x)

    @property
    def count(self) -> int:
        """Observations ever added, kept or not."""
        return self._count

    def __len__(self) -> int:
        return len(self._sorted)

    def cdf(self, tau: float) -> float:
        """Fraction of kept samples <= ``tau``; 0.0 when empty."""
        tau = _check_tau(tau)
        if not self._sorted:
            return 0.0
        return bisect_right(self._sorted, tau) / len(self._sorted)

    def quantile(self, q: float) -> float:
        """Nearest-rank quantile: the smallest kept sample ``x`` with ``cdf(x) >= q`` (the minimum for q=0)."""
        q = _check_q(q)
        self._require_samples("quantile")
        n = len(self._sorted)
        rank = max(1, math.ceil(q * n - 1e-9))
        return self._sorted[rank - 1]

    @property
    def mean(self) -> float:
        """Mean of the kept samples; ``ToolStatsError`` when empty."""
        self._require_samples("mean")
        return math.fsum(self._sorted) / len(self._sorted)

    def support(self) -> tuple[float, ...]:
        """The distinct kept values, sorted: the candidate TTLs."""
        return tuple(x for i, x in enumerate(self._sorted) if i == 0 or x != self._sorted[i - 1])

    def samples(self) -> tuple[float, ...]:
        """The kept samples, sorted (duplicates kept)."""
        return tuple(self._sorted)

    def copy(self) -> EmpiricalDistribution:
        """An independent copy: later ``add`` calls on either side do not reach the other."""
        other = EmpiricalDistribution(self.max_samples)
        other._arrivals = deque(self._arrivals)
        other._sorted = list(self._sorted)
        other._count = self._count
        return other

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable snapshot; ``samples`` are in arrival order so eviction order survives."""
        return {"max_samples": self.max_samples, "count": self._count, "samples": list(self._arrivals)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmpiricalDistribution:
        """Rebuild from ``to_dict`` output; ``ToolStatsError`` when it is malformed."""
        try:
            dist = cls(data["max_samples"])
            samples, count = data["samples"], data["count"]
        except (KeyError, TypeError) as e:
            raise ToolStatsError(f"malformed distribution snapshot: {e!r}") from None
        if not isinstance(samples, list) or len(samples) > dist.max_samples:
            raise ToolStatsError(f"snapshot samples must be a list of at most {dist.max_samples} durations")
        dist.extend(samples)
        if isinstance(count, bool) or not isinstance(count, int) or count < len(samples):
            raise ToolStatsError(f"snapshot count {count!r} is below the {len(samples)} kept samples")
        dist._count = count
        return dist

    def check_integrity(self) -> None:
        """Raise ``ToolStatsError`` unless the sorted view, the arrival queue and ``count`` agree."""
        if self._sorted != sorted(self._arrivals):
            raise ToolStatsError("sorted samples differ from the arrival queue")
        if len(self._sorted) > self.max_samples or self._count < len(self._sorted):
            raise ToolStatsError(f"{len(self._sorted)} kept of {self._count} seen, max {self.max_samples}")

    def _require_samples(self, what: str) -> None:
        if not self._sorted:
            raise ToolStatsError(f"{what} of an empty distribution")

    def __repr__(self) -> str:
        return f"EmpiricalDistribution(kept={len(self)}, count={self._count}, max_samples={self.max_samples})"


@dataclass(frozen=True)
class ExponentialPrior:
    """Exponential durations with mean ``mean_s``: the model used before any tool has been observed."""

    mean_s: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.mean_s, bool) or not isinstance(self.mean_s, (int, float)):
            raise ToolStatsError(f"prior mean {self.mean_s!r} is not a number of seconds")
        if not math.isfinite(self.mean_s) or self.mean_s <= 0:
            raise ToolStatsError(f"prior mean {self.mean_s!r} s must be finite and > 0")

    def cdf(self, tau: float) -> float:
        """``1 - exp(-tau / mean_s)`` for tau >= 0, else 0.0."""
        tau = _check_tau(tau)
        return 0.0 if tau <= 0 else -math.expm1(-tau / self.mean_s)

    def quantile(self, q: float) -> float:
        """``-mean_s * ln(1 - q)``; ``inf`` at q = 1."""
        q = _check_q(q)
        return math.inf if q == 1.0 else -self.mean_s * math.log1p(-q)

    @property
    def mean(self) -> float:
        return float(self.mean_s)

    def support(self) -> tuple[float, ...]:
        """Its quantiles at ``PRIOR_SUPPORT_QUANTILES``, sorted."""
        return tuple(self.quantile(q) for q in PRIOR_SUPPORT_QUANTILES)
