"""The ``tether`` command-line tests: runs on disk for ``tether ui --snapshot`` (the UI tests' builder)."""

from __future__ import annotations

import pytest

from tests.ui.traces import Runs, write_runs


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return write_runs(tmp_path_factory.mktemp("runs"))
