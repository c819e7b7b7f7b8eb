"""``autellix``: program-level least attained service (Autellix's PLAS): the program that has received the
least service so far goes first; KV is freed to the LRU prefix cache at each tool call."""

from __future__ import annotations

from runtime.policies.base import PolicyContext
from runtime.policies.vllm import VLLMPolicy


class AutellixPolicy(VLLMPolicy):
    name = "autellix"

    def priority(self, seq, ctx: PolicyContext) -> tuple:
        state = ctx.programs.get(seq.hints.program_id) if seq.hints.program_id else None
        if state is None:
            return (0, seq.arrival_time, seq.seq_index)
        return (state.attained_tokens, state.arrival, seq.seq_index)
