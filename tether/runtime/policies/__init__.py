"""Scheduling policies, chosen by name. Each is a small object behind ``SchedulingPolicy`` (``base.py``)."""

from __future__ import annotations

from tether.runtime.policies.autellix import AutellixPolicy
from tether.runtime.policies.base import PolicyContext, SchedulingPolicy
from tether.runtime.policies.continuum import ContinuumFixedPolicy, ContinuumPolicy
from tether.runtime.policies.infercept import InferCeptPolicy
from tether.runtime.policies.tether import TetherOptions, TetherPolicy
from tether.runtime.policies.tier import TIERED, parse_tier, without_tier
from tether.runtime.policies.vllm import LMCachePolicy, VLLMPolicy

POLICIES: dict[str, type] = {
    p.name: p
    for p in (
        VLLMPolicy,
        LMCachePolicy,
        InferCeptPolicy,
        AutellixPolicy,
        ContinuumPolicy,
        ContinuumFixedPolicy,
        TetherPolicy,
    )
}


def get_policy(name: str) -> SchedulingPolicy:
    """A policy by name; ``tether:<options>`` is ``tether`` with parts switched (``TetherOptions.parse``), and
    ``<baseline>:tier=on|off`` a baseline with or without the CPU tier (``tier.py``)."""
    base, _, spec = name.partition(":")
    if base == "tether" and spec:
        return TetherPolicy(TetherOptions.parse(spec), name=name)
    if base in TIERED and spec:
        policy = POLICIES[base]()
        if not parse_tier(name, spec):
            without_tier(policy)
        policy.name = name
        return policy
    try:
        return POLICIES[name]()
    except KeyError:
        raise ValueError(
            f"unknown policy {name!r}; known: {', '.join(POLICIES)}, tether:<options>, "
            f"{'|'.join(TIERED)}:tier=on|off"
        ) from None


__all__ = ["POLICIES", "PolicyContext", "SchedulingPolicy", "get_policy"]
