"""The kernels compile for real GPUs (Hopper sm_90, Ampere sm_80) on this CPU-only machine, without register
spills and within shared memory: what the interpreter cannot check (it takes any dot shape and any types)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")
pytestmark = pytest.mark.slow  # Triton's real compiler (ptxas) in a subprocess


def test_kernels_compile_for_sm90_and_sm80_without_spills():
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(PYTHONPATH=str(root), TRITON_DEFAULT_FP_FUSION="1")
    out = subprocess.run(
        [sys.executable, "-m", "tests.kernels.compile_check"], cwd=root, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    kinds = {(r["kernel"], r["arch"]) for r in rows}
    assert kinds == {
        ("paged_attention_kernel", 90),
        ("paged_attention_kernel", 80),
        ("_merge_two_kernel", 90),
        ("_reduce_splits_kernel", 90),
        ("_store_kv_kernel", 90),
    }
    assert len(rows) == 7
    for r in rows:
        assert r["stack"] == 0, f"register spills: {r}"
        assert r["shared"] <= 99 * 1024, f"shared memory past what every recent GPU has: {r}"
