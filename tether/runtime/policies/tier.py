"""``<baseline>:tier=on|off``: the CPU tier of the baselines that did not publish one.

A comparison is fair only if every policy may use the host memory it is given. ``lmcache`` writes the GPU
blocks it evicts to the CPU tier and reloads them on a later prefix hit (``tether/kvcache/cpu_tier.py``), and so, by
default, do ``continuum``, ``continuum-fixed``, ``autellix`` and ``infercept``: each keeps its own published
rule for ordering and pinning, plus LMCache's offload on evict and reload on admission (the strongest form of
each baseline here, not its paper's). ``tier=off`` gives the published form: no offload on evict; a CPU tier only
where the policy's own mechanism uses one (InferCept swaps paused requests' KV to host memory).
"""

from __future__ import annotations

TIERED = ("continuum", "continuum-fixed", "autellix", "infercept")


def parse_tier(policy: str, spec: str) -> bool:
    """``"tier=on"`` -> True, ``"tier=off"`` -> False; a ``ValueError`` naming the policy and the part at fault."""
    key, sep, value = spec.partition("=")
    if key != "tier" or not sep:
        raise ValueError(f"policy {policy!r}: unknown option {spec!r}; the one option is tier=on|off")
    if value not in ("on", "off"):
        raise ValueError(f"policy {policy!r}: tier must be on or off, got {value!r}")
    return value == "on"


def without_tier(policy) -> None:
    """``policy`` (an instance) in its published form: no offload on evict, host memory only for its own use."""
    policy.offload_on_evict = False
    policy.cpu_tier = policy.published_cpu_tier
