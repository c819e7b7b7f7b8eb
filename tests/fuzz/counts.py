"""Shared by the fuzz tests: ``FUZZ`` settings (no deadline: CPU timings on shared cores vary), ``SCALE`` (the
``TETHER_FUZZ_SCALE`` environment variable multiplies every test's examples, for a longer hunt) and the count
of inputs tried per target, printed at the end of the run (``pytest -s``)."""

from __future__ import annotations

import os
from collections import Counter

from hypothesis import HealthCheck, settings

FUZZ = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
SCALE = max(1, int(os.environ.get("TETHER_FUZZ_SCALE", "1")))
TRIED: Counter[str] = Counter()


def tried(target: str) -> None:
    TRIED[target] += 1
