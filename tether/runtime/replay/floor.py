"""The least prefill any policy can do on a workload: what a perfect cache would still have to compute.

Two floors, both from the (scaled) trace alone:

- token level: each program's first prompt, then each later turn's new input;
- block level: a prefix cache that keeps whole blocks only (vLLM's, and this engine's) also recomputes the
  previous context's last partial block each turn. The previous turn left KV for its prompt and its output
  less the last output token (that token is sampled, never fed back), and a prompt's last token is always
  computed, so turn k reuses ``min(whole blocks of that KV, whole blocks of prompt[k] - 1)`` blocks.

A call a compiled program's turn forks (``Turn.parallel``) shares its turn's prompt: at token level it computes
nothing new; at block level, the prompt's last partial block. The next turn reuses the KV of the turn's own call,
whose output comes first in the joined prompt.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tether.runtime.replay.workload import TraceProgram


@dataclass(frozen=True)
class PrefillFloor:
    prompt_tokens: int
    token_level: int
    block_level: int
    block_size: int

    def as_dict(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "token_level": self.token_level,
            "block_level": self.block_level,
            "block_size": self.block_size,
        }


def prefill_floor(programs: Iterable[TraceProgram], block_size: int) -> PrefillFloor:
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    prompt = token = block = 0
    for p in programs:
        prev = None
        for t in p.turns:
            prompt += t.prompt_tokens
            if prev is None:
                token += t.prompt_tokens
                block += t.prompt_tokens
            else:
                token += t.new_input_tokens
                kv_tokens = prev.prompt_tokens + prev.output_tokens - 1
                reused = min(kv_tokens // block_size, (t.prompt_tokens - 1) // block_size) * block_size
                block += t.prompt_tokens - reused
            for _ in t.parallel:
                prompt += t.prompt_tokens
                block += t.prompt_tokens - (t.prompt_tokens - 1) // block_size * block_size
            prev = t
    return PrefillFloor(prompt, token, block, block_size)
