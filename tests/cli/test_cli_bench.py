"""``tether bench``: the kernel benchmark refuses to run without a CUDA GPU, and the vLLM comparison without
vLLM's environment, each naming what it needs."""

from __future__ import annotations

import pytest
import torch

from tether.cli import main


def test_bench_kernels_refuses_to_run_without_cuda(capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the benchmark would run")
    assert main(["bench", "kernels", "--json", "unused.json"]) == 2
    assert "tether bench kernels needs a CUDA GPU" in capsys.readouterr().err


def test_bench_engine_against_vllm_names_what_is_missing(tmp_path, capsys):
    missing = str(tmp_path / "no-venv" / "python")
    assert main(["bench", "engine", "--model", "tiny", "--against", "vllm", "--vllm-python", missing]) == 2
    assert "'tiny' is a preset vLLM cannot load" in capsys.readouterr().err
    assert main(["bench", "engine", "--model", "smollm2", "--against", "vllm", "--vllm-python", missing]) == 2
    assert f"no {missing} (run `make vllm-peer`)" in capsys.readouterr().err
