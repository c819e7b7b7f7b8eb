"""``autellix`` (Luo et al., arXiv 2502.13965): program-level least attained service (PLAS) over discretised
priority queues, with a starvation guard.

- A program's attained service is the tokens computed for it for the first time (``ProgramState.attained_tokens``;
  a recompute after preemption or eviction is not service again). Its queue is the number of thresholds in
  ``QUEUE_THRESHOLDS`` that the service has reached: it is demoted as it is served, queue 0 first.
- Within a queue, calls go first come, first served (by the call's arrival).
- Starvation guard: a waiting program whose wait since its last promotion, over its service in engine seconds
  (at least ``MIN_SERVICE_S``), reaches ``STARVATION_RATIO`` goes to queue 0 until that turn is admitted.
- Queues are re-sorted every step (levels change as programs are served and wait); KV is freed to the LRU
  prefix cache at each tool call, as in vLLM.

Sources and choices: docs/scheduling.md."""

from __future__ import annotations

import bisect

from tether.runtime.policies.base import PolicyContext
from tether.runtime.policies.vllm import VLLMPolicy

QUEUE_THRESHOLDS = (1024, 2048, 4096, 8192, 16384, 32768, 65536)  # tokens: 8 queues (our choice)
STARVATION_RATIO = 8.0  # beta: wait / service that promotes (our choice)
MIN_SERVICE_S = 1.0  # service floor in the ratio, so a barely served program is not promoted at once


def queue_level(attained_tokens: int) -> int:
    return bisect.bisect_right(QUEUE_THRESHOLDS, attained_tokens)


class AutellixPolicy(VLLMPolicy):
    name = "autellix"
    cpu_tier = offload_on_evict = True  # LMCache's tier, which the paper's form lacks (``autellix:tier=off``)
    published_cpu_tier = False
    resort_each_step = True

    def priority(self, seq, ctx: PolicyContext) -> tuple:
        state = ctx.programs.get(seq.hints.program_id) if seq.hints.program_id else None
        if state is None:
            return (0, seq.arrival_time, seq.seq_index)
        return (self.level(state, ctx.now), seq.arrival_time, seq.seq_index)

    def level(self, state, now: float) -> int:
        if state.waiting_since is not None and state.waited_s(now) >= STARVATION_RATIO * max(
            MIN_SERVICE_S, state.service_s
        ):
            state.promoted = True
        return 0 if state.promoted else queue_level(state.attained_tokens)
