"""Scheduling policies, chosen by name. Each is a small object behind ``SchedulingPolicy`` (runtime/policies/base)."""

from __future__ import annotations

from runtime.policies.autellix import AutellixPolicy
from runtime.policies.base import PolicyContext, SchedulingPolicy
from runtime.policies.continuum import ContinuumFixedPolicy, ContinuumPolicy
from runtime.policies.infercept import InferCeptPolicy
from runtime.policies.tether import TetherPolicy
from runtime.policies.vllm import LMCachePolicy, VLLMPolicy

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
    try:
        return POLICIES[name]()
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}") from None


__all__ = ["POLICIES", "PolicyContext", "SchedulingPolicy", "get_policy"]
