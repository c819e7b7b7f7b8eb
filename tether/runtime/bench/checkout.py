"""Benchmarks that use the source checkout's ``bench/`` and ``examples/`` (question sets, example tools): they
run from a checkout (the project is installed editable by ``make install``), not from an installed wheel."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]  # tether/runtime/bench/ -> the checkout


def source_checkout() -> Path:
    """Put the checkout's root on ``sys.path`` (so ``bench.*`` and ``examples.*`` import) and return it;
    ``RuntimeError`` saying so when this installation is not a source checkout."""
    if not (ROOT / "examples" / "agent_tools.py").is_file() or not (ROOT / "bench").is_dir():
        raise RuntimeError(
            f"this benchmark needs the source checkout's bench/ and examples/ (not found under {ROOT}); "
            "run it from a clone installed with `make install`"
        )
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return ROOT
