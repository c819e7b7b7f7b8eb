"""Remaining work of an open-ended program, learned from programs that have finished.

A server cannot know how much work an agent has left. It can know how much finished programs took: their turns,
and the tokens computed for them (their service). ``RemainingWorkPredictor`` keeps those totals in one unit
(bounded, newest kept) and answers, for a program that has attained ``a`` units so far:

- ``expected_remaining(a)``: ``E[S - a | S > a]``, the mean residual of the total-service distribution ``S``;
- ``gittins(a)``: the Gittins index ``max_d P(S <= a + d | S > a) / E[min(S - a, d) | S > a]``: the best
  completion rate per unit of service the program can offer. Serving the highest index first minimises mean
  completion time in a queue whose job sizes are unknown but drawn from a known distribution (Gittins, 1989;
  Aalto, Ayesta and Righter, "On the Gittins index in the M/G/1 queue", Queueing Systems 2009). With a
  decreasing hazard rate it orders as least attained service does; with an increasing one, as FCFS. A program
  whose remaining turns are really known (``r``, from a static DAG) has index ``1 / r`` on the turn scale.

Only finished programs are observed: a running program's future is never an input. Before ``min_samples``
programs have finished, an optional prior (totals from traces shipped with the project, weighted as
``prior_weight`` programs) stands in; with neither, every program gets the same index and the caller's tie-break
(least attained service, arrival) decides.
"""

from __future__ import annotations

import bisect
import json
from collections import deque
from collections.abc import Iterable
from pathlib import Path

PRIOR_PATH = Path(__file__).with_name("turns_prior.json")


class RemainingWorkPredictor:
    def __init__(
        self,
        prior: Iterable[float] = (),
        *,
        max_samples: int = 1000,
        min_samples: int = 20,
        quantum: float = 1.0,
    ) -> None:
        """``quantum``: attained service is rounded down to a multiple of it before an index is computed (the
        indices of one quantum are cached until the next program finishes)."""
        self.prior = sorted(float(x) for x in prior)
        self.min_samples = min_samples
        self.quantum = quantum
        self._online: deque[float] = deque(maxlen=max_samples)
        self._sorted: list[float] | None = None  # the samples in use, sorted; None when stale
        self._gittins: dict[int, float] = {}  # attained quanta -> index, for the current samples

    @classmethod
    def with_shipped_prior(cls, exclude: str | None = None, **kw) -> RemainingWorkPredictor:
        """The prior fitted offline from ``../shared/workloads`` (``turns_prior.json``, per trace; see its
        ``source``), less the trace named ``exclude`` (a file stem): an evaluation on a trace never uses a prior
        fitted on it."""
        doc = json.loads(PRIOR_PATH.read_text())
        return cls([t for name, totals in doc["traces"].items() if name != exclude for t in totals], **kw)

    # -- learning -------------------------------------------------------------------------------------------
    def observe(self, total: float) -> None:
        """A program finished, having taken ``total`` units of service in all."""
        if total > 0:
            self._online.append(float(total))
            self._sorted = None
            self._gittins.clear()

    @property
    def num_observed(self) -> int:
        return len(self._online)

    def samples(self) -> list[float]:
        """Totals in use, sorted: the finished programs, plus the prior until ``min_samples`` have finished."""
        if self._sorted is None:
            online = list(self._online)
            self._sorted = sorted(online if len(online) >= self.min_samples else online + self.prior)
        return self._sorted

    # -- predictions ----------------------------------------------------------------------------------------
    def expected_remaining(self, attained: float) -> float | None:
        """Mean remaining service of a program that has attained ``attained``; None when no finished program
        took more."""
        tail = self._tail(attained)
        return sum(tail) / len(tail) - attained if tail else None

    def gittins(self, attained: float) -> float:
        """The Gittins index after ``attained`` units of service (higher: serve sooner). A program older than
        every sample gets the index of one quantum more than the longest sample (it has outlived the evidence;
        it is treated as the longest job, never dropped)."""
        key = int(attained // self.quantum)
        index = self._gittins.get(key)
        if index is None:
            index = self._gittins[key] = self._compute(key * self.quantum)
        return index

    def _tail(self, attained: float) -> list[float]:
        s = self.samples()
        return s[bisect.bisect_right(s, attained) :]

    def _compute(self, attained: float) -> float:
        tail = self._tail(attained)
        if not tail:
            samples = self.samples()
            return 1.0 / (max(samples) + self.quantum) if samples else 0.0
        n = len(tail)
        best = 0.0
        served = 0.0  # sum over the tail of min(S - a, d), for d = the current threshold
        done = 0
        prev_d = 0.0
        # Thresholds at each distinct remaining size d = S - a; between them the ratio only falls.
        for i, total in enumerate(tail):
            d = total - attained
            served += (n - i) * (d - prev_d)  # every program not yet done runs d - prev_d more turns
            prev_d = d
            done = i + 1
            if i + 1 < n and tail[i + 1] == total:
                continue
            best = max(best, done / served)
        return best
