"""The baselines without program awareness: ``vllm`` (request FCFS, LRU prefix cache, no pins) and ``lmcache``
(the same plus a CPU tier: evicted blocks are written to host memory and reloaded on a later hit)."""

from __future__ import annotations

from tether.runtime.policies.base import SchedulingPolicy


class VLLMPolicy(SchedulingPolicy):
    """The base's defaults, as they are: request FCFS, no pins, no tier."""

    name = "vllm"


class LMCachePolicy(VLLMPolicy):
    name = "lmcache"
    cpu_tier = True
    offload_on_evict = True
