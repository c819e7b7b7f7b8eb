"""Session fixtures shared by every test directory."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _tether_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real ``~/.cache/tether`` (the deployment's tool durations, converted
    models, runs): ``TETHER_HOME`` is a fresh folder per test unless the test sets its own."""
    monkeypatch.setenv("TETHER_HOME", str(tmp_path_factory.mktemp("tether_home")))


@pytest.fixture(scope="session")
def smollm2() -> Any:
    """``LLM("smollm2")`` (float32, CPU), loaded once per run. Tests leave its engine empty: every request
    finished or aborted, ``check_integrity()`` passing."""
    from tether.runtime import LLM

    return LLM("smollm2", num_kv_blocks=512, max_num_batched_tokens=512)


@pytest.fixture(scope="session")
def smollm2_transformers() -> Any:
    from tests.smollm2 import transformers_smollm2

    return transformers_smollm2()
