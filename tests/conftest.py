"""Session fixtures shared by every test directory."""

from __future__ import annotations

from typing import Any

import pytest


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
