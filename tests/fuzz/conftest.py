"""Prints how many inputs each fuzz target tried (``pytest -s tests/fuzz``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz.counts import TRIED


@pytest.fixture(scope="session", autouse=True)
def _report_counts() -> Iterator[None]:
    yield
    if TRIED:
        print("\nfuzz inputs tried: " + ", ".join(f"{k}={v}" for k, v in sorted(TRIED.items())))
