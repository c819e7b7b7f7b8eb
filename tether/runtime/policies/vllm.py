"""The baselines without program awareness: ``vllm`` (request FCFS, LRU prefix cache, no pins) and ``lmcache``
(the same plus a CPU tier: evicted blocks are written to host memory and reloaded on a later hit)."""

from __future__ import annotations

from tether.runtime.policies.base import Decision, Free, PolicyContext, PressureAction, TurnEnd


class VLLMPolicy:
    name = "vllm"
    cpu_tier = False
    offload_on_evict = False
    relieve_pins = "eager"  # the scheduler asks for pins before any preemption or stalled admission

    def priority(self, seq, ctx: PolicyContext) -> tuple:
        return (seq.arrival_time, seq.seq_index)

    def on_turn_end(self, end: TurnEnd, ctx: PolicyContext) -> Decision:
        return Free()

    def relieve(self, ctx: PolicyContext, blocks_needed: int, requester=None) -> list[PressureAction]:
        return []

    def prefetches(self, ctx: PolicyContext) -> list[str]:
        return []


class LMCachePolicy(VLLMPolicy):
    name = "lmcache"
    cpu_tier = True
    offload_on_evict = True
