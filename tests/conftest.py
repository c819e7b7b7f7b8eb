"""Session fixtures shared by every test directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Engines in tests run eager unless a test asks to compile (enforce_eager=False): compiling SmolLM2 takes a minute
# on this machine. Set before any engine starts, so the servers and CLIs the tests spawn inherit it.
os.environ.setdefault("TETHER_ENFORCE_EAGER", "1")


def _fresh_home(tmp_path_factory: pytest.TempPathFactory, models: Path) -> Path:
    home = tmp_path_factory.mktemp("tether_home")
    (home / "models").symlink_to(models, target_is_directory=True)
    return home


@pytest.fixture(scope="session", autouse=True)
def _real_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The real ``models/`` folder; meanwhile the session's own fixtures (the servers, the SmolLM2 ``LLM``), which
    start before any test's home is set, get a session ``TETHER_HOME`` of their own."""
    from tether.home import tether_home

    models = tether_home() / "models"
    models.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TETHER_HOME", str(_fresh_home(tmp_path_factory, models)))
        yield models


@pytest.fixture(autouse=True)
def _tether_home(
    _real_models: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test reads or writes the real ``TETHER_HOME`` (the deployment's tool durations, runs): it is a fresh
    folder per test, unless the test sets its own. Its ``models/`` links to the real one, so converted models
    (SmolLM2's GGUF, converted once) are shared across tests and runs."""
    monkeypatch.setenv("TETHER_HOME", str(_fresh_home(tmp_path_factory, _real_models)))


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


@pytest.fixture
def no_tool_latency() -> Iterator[None]:
    """The example tools (``examples/agent_tools.py``) answer at once for the test, then as before."""
    from examples import agent_tools

    before = agent_tools.TOOL_LATENCY
    agent_tools.set_latency("none")
    yield
    agent_tools.set_latency(before)
