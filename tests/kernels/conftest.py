"""The kernel tests run the Triton kernels themselves.

On a CPU machine they run in the Triton interpreter: ``TRITON_INTERPRET=1`` is set here, at collection, before
any kernel module is imported (triton chooses interpret or compile when ``@triton.jit`` decorates a kernel).
With ``TRITON_INTERPRET=0`` in the environment and a CUDA device, the same tests run compiled on the GPU (bf16
included). Only triton reads the variable; the engine's CPU path never imports triton.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


def interpreting() -> bool:
    return os.environ["TRITON_INTERPRET"].lower() in ("1", "true", "on", "yes")


def kernel_device() -> torch.device:
    if interpreting():
        return torch.device("cpu")
    if not torch.cuda.is_available():
        pytest.skip("TRITON_INTERPRET is off and there is no CUDA device")
    return torch.device("cuda")


def kernel_dtypes() -> list[torch.dtype]:
    """fp32 and fp16; bf16 only compiled (the interpreter computes it wrongly)."""
    return [torch.float32, torch.float16] + ([] if interpreting() else [torch.bfloat16])


@pytest.fixture
def device() -> torch.device:
    return kernel_device()
