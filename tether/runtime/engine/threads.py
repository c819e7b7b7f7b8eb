"""How many intra-op threads a CPU engine's torch work gets, and a warning when the machine is oversubscribed.

The rule (docs/engine.md, "Threads"): by default the engine takes the CPUs this process may use
(``os.sched_getaffinity``) less one, and at least one. The core left over runs the server's event loop, the
tokenizer and whatever else shares the machine: OpenMP's workers spin between parallel regions, so a thread
that loses its core to another process stalls every step (``bench/threads_busy.py``: on a busy 2-core machine
two threads decoded at batch 1 3.1x slower than one). ``--threads N`` overrides it. Torch-free: torch is
imported only by ``apply_threads``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class ThreadSetting:
    """``threads`` intra-op threads out of ``cpus`` usable CPUs; ``source`` says where the number came from."""

    threads: int
    cpus: int
    source: str


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; ``os.cpu_count()`` where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resolve_threads(requested: int | None, cpus: int | None = None) -> ThreadSetting:
    """``requested`` (``--threads``) or the default: usable CPUs less one, at least one."""
    cpus = usable_cpus() if cpus is None else cpus
    if requested is None:
        return ThreadSetting(max(1, cpus - 1), cpus, f"default: {cpus} usable CPUs less one")
    if requested < 1:
        raise ValueError(f"--threads must be >= 1, got {requested}")
    return ThreadSetting(requested, cpus, "--threads")


def oversubscription(setting: ThreadSetting, load: float) -> str | None:
    """A warning when the 1-minute load average plus the engine's threads exceed the usable CPUs, else None."""
    if load + setting.threads <= setting.cpus + 0.5:
        return None
    return (
        f"{setting.threads} engine thread(s) on {setting.cpus} usable CPU(s) with a load average of {load:.1f}: "
        "the machine is oversubscribed and each step may stall while a thread waits for a core; "
        "fewer --threads is faster here (docs/engine.md, Threads)"
    )


_warned = False


def apply_threads(threads: int) -> None:
    """Set torch's intra-op threads for this process; warn once if the machine is oversubscribed."""
    import torch

    global _warned
    torch.set_num_threads(threads)
    message = oversubscription(ThreadSetting(threads, usable_cpus(), "engine"), os.getloadavg()[0])
    if message is not None and not _warned:
        _warned = True
        warnings.warn(message, RuntimeWarning, stacklevel=2)
