"""``tether bench``: the kernel benchmark refuses to run without a CUDA GPU, naming what it needs."""

from __future__ import annotations

import pytest
import torch

from tether.runtime.cli import main


def test_bench_kernels_refuses_to_run_without_cuda(capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the benchmark would run")
    assert main(["bench", "kernels", "--json", "unused.json"]) == 2
    assert "tether bench kernels needs a CUDA GPU" in capsys.readouterr().err
