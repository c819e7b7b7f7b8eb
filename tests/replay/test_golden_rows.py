"""Refactors change no behaviour: every policy's simulated rows, on a fixed seed, equal the committed ones.

The rows (``golden_rows.json``) are a busy synthetic workload and the compiled programs built from it, replayed
under every policy (and ``tether:keep=ttl``) on the virtual clock. A change that is meant to alter what a policy
does regenerates them on purpose: ``TETHER_WRITE_GOLDEN=1 pytest tests/replay/test_golden_rows.py``, and the diff
of the file shows which rows moved.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.replay.synthetic import busy_programs
from tether.runtime.costs import H100_LLAMA31_8B
from tether.runtime.engine.config import EngineConfig
from tether.runtime.policies import POLICIES
from tether.runtime.replay.compiled import compile_programs
from tether.runtime.replay.runner import ReplaySettings, run_replay

GOLDEN = Path(__file__).with_name("golden_rows.json")
POLICY_NAMES = (*POLICIES, "tether:keep=ttl")
SIGNIFICANT = 10  # digits kept of each float: identical arithmetic, printed without platform noise


def _rounded(value: object) -> object:
    return float(f"{value:.{SIGNIFICANT}g}") if isinstance(value, float) else value


def rows() -> dict[str, list[dict]]:
    engine = EngineConfig(model="tiny", num_kv_blocks=128, max_num_batched_tokens=512, num_cpu_kv_blocks=128)
    settings = ReplaySettings(POLICY_NAMES, engine, rate=1.5, seed=1, simulate=True, cost_model=H100_LLAMA31_8B)
    traces = busy_programs(60)
    out = {}
    for name, programs in (("agents", traces), ("compiled", compile_programs(traces, 40, seed=2))):
        out[name] = [
            {k: _rounded(v) for k, v in row.items() if k != "wall_s"} for row in run_replay(settings, programs)
        ]
    return out


def test_every_policy_replays_exactly_as_committed() -> None:
    got = rows()
    if os.environ.get("TETHER_WRITE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(got, indent=1) + "\n")
        pytest.skip(f"wrote {GOLDEN.name}")
    want = json.loads(GOLDEN.read_text())
    assert list(got) == list(want)
    for workload in want:
        assert [r["policy"] for r in got[workload]] == list(POLICY_NAMES)
        for g, w in zip(got[workload], want[workload], strict=True):
            assert g == w, f"{workload}: {w['policy']} moved"
    assert all(r["kv_leaked_blocks"] == 0 for rs in got.values() for r in rs)
