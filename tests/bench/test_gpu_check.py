"""``make gpu-check``'s plumbing on CPU: a step that passes writes its JSON, a skipped one says why, a failing one
is recorded with its error and the next step still runs; the summary counts them."""

from __future__ import annotations

import json
import sys

import pytest

from bench import gpu_check
from bench.gpu_check import Step


def test_steps_are_recorded_passed_skipped_or_failed(tmp_path, monkeypatch):
    write = "import sys, pathlib; pathlib.Path(sys.argv[1]).write_text('{\"ok\": 1}')"
    steps = [
        Step("boom", [sys.executable, "-c", "raise SystemExit('kernel exploded')"], 30),
        Step("absent", [], 1, skip="needs CUDA"),
        Step("fine", [sys.executable, "-c", write, str(tmp_path / "fine.json")], 30),
    ]
    monkeypatch.setattr(gpu_check, "dry_steps", lambda out: steps)
    assert gpu_check.main(["--dry-run", "--out", str(tmp_path)]) == 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [(s["step"], s["status"]) for s in summary["steps"]] == [
        ("boom", "failed"), ("absent", "skipped"), ("fine", "passed"),
    ]  # fmt: skip
    assert "kernel exploded" in summary["steps"][0]["error"]
    assert (summary["passed"], summary["failed"], summary["skipped"]) == (1, 1, 1)
    assert json.loads((tmp_path / "boom.json").read_text())["returncode"] == 1
    assert json.loads((tmp_path / "absent.json").read_text()) == {"skipped": "needs CUDA"}


@pytest.mark.slow  # the kernel grid step in a subprocess (Triton interpreter)
def test_dry_run_kernel_grid_step_passes_on_cpu(tmp_path):
    assert gpu_check.main(["--dry-run", "--out", str(tmp_path), "--only", "kernels_grid,bench_kernels"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [s["status"] for s in summary["steps"]] == ["passed", "skipped"]
    grid = json.loads((tmp_path / "kernels_grid.json").read_text())
    assert grid["passed"] and grid["triton_interpret"] and len(grid["cases"]) == 4


def test_dry_and_gpu_runs_have_the_same_steps(tmp_path):
    assert [s.name for s in gpu_check.dry_steps(tmp_path)] == [s.name for s in gpu_check.gpu_steps(tmp_path)]
