"""Where the Triton kernels can run: CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``.

Triton decides at decoration time (when a kernel module is first imported) whether ``@triton.jit`` compiles or
interprets, so ``TRITON_INTERPRET`` must be set before then; ``interpreted()`` reports what was decided.
"""

from __future__ import annotations

import functools

import torch

from tether.kernels.contract import KernelInputError, KernelUnavailableError
from tether.kernels.tiles import INTERPRETER_SMS


@functools.cache
def interpreted() -> bool:
    """Whether this process's kernels run in the Triton interpreter (numpy on the CPU)."""
    from tether.kernels.attention_kernel import paged_attention_kernel

    return type(paged_attention_kernel).__name__ == "InterpretedFunction"


def ensure_runnable(dtype: torch.dtype, *tensors: torch.Tensor) -> None:
    """All tensors on one device that the kernels can run on; bf16 is refused by the interpreter (which
    computes it wrongly)."""
    device = tensors[0].device
    for t in tensors[1:]:
        if t.device != device:
            raise KernelInputError(f"tensors on {device} and {t.device}: the kernel needs one device")
    if interpreted():
        if device.type != "cpu":
            raise KernelUnavailableError(f"TRITON_INTERPRET=1 runs kernels on CPU tensors, got {device}")
        if dtype == torch.bfloat16:
            raise KernelUnavailableError(
                "the Triton interpreter computes bfloat16 wrongly; use fp16/fp32 or CUDA"
            )
    elif device.type != "cuda":
        raise KernelUnavailableError(
            f"Triton kernels need CUDA tensors (got {device}); set TRITON_INTERPRET=1 before importing kernels "
            "to run them on the CPU, or use kernels.torch_ops"
        )


def num_sms(device: torch.device) -> int:
    """Streaming multiprocessors of the device (a small fixed number under the interpreter)."""
    if device.type != "cuda":
        return INTERPRETER_SMS
    return _cuda_sms(device.index if device.index is not None else torch.cuda.current_device())


@functools.cache
def _cuda_sms(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count
