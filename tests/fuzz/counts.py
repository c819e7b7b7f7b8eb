"""Shared by the fuzz tests: ``FUZZ`` settings (no deadline: CPU timings on shared cores vary) and the count of
inputs tried per target, printed at the end of the run (``pytest -s``)."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, settings

FUZZ = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
TRIED: Counter[str] = Counter()


def tried(target: str) -> None:
    TRIED[target] += 1
