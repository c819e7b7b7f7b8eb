"""Session fixtures shared by every test directory."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _tether_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real ``TETHER_HOME`` (the deployment's tool durations, runs): it is a fresh
    folder per test, unless the test sets its own. Its ``models/`` links to the real one, so converted models
    (SmolLM2's GGUF, converted once) are shared across tests and runs."""
    from tether.home import tether_home

    real_models = tether_home() / "models"
    real_models.mkdir(parents=True, exist_ok=True)
    home = tmp_path_factory.mktemp("tether_home")
    (home / "models").symlink_to(real_models, target_is_directory=True)
    monkeypatch.setenv("TETHER_HOME", str(home))


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
