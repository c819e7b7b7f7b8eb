"""A synthetic trace workload for simulation tests: busy enough that the policies differ."""

from __future__ import annotations

import random

from tether.runtime.replay.workload import TraceProgram, Turn

TOOL_SECONDS = {"edit": (0.2, 2.0), "python": (1.0, 5.0), "bash": (2.0, 30.0)}  # short pauses pay for pins


def busy_programs(n: int, seed: int = 0) -> list[TraceProgram]:
    """Programs of 3-5 turns, 300-700-token first prompts (under tiny's 2048-token context at the end), tool
    pauses of 0.2-30 s: enough to fill a small cache and to run for minutes of virtual time."""
    rng = random.Random(seed)
    out = []
    for p in range(n):
        turns, prompt = [], rng.randrange(300, 700)
        count = rng.randrange(3, 6)
        for k in range(count):
            new = prompt if k == 0 else rng.randrange(20, 150)
            prompt = prompt if k == 0 else prompt + new
            output = rng.randrange(20, 100)
            last = k == count - 1
            tool = None if last else rng.choice(list(TOOL_SECONDS))
            wait = None if tool is None else rng.uniform(*TOOL_SECONDS[tool])
            turns.append(Turn(prompt, new, output, tool, wait))
            prompt += output
        out.append(TraceProgram(f"p{p}", tuple(turns)))
    return out
