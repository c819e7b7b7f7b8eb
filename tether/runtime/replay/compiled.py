"""A workload of compiled programs, built from agent traces (``tether workload compile``).

A compiled program is a workflow whose calls are fixed before it runs (workflow YAML, a planner's plan, a
decorator agent with ``compile()``): its client knows each call's tool, the turns left on the critical path and
which calls share a prompt. The traces hold open-ended agents, so this module builds such programs from them,
keeping their sizes and their tools' measured durations:

- Each program takes a trace program as its template (drawn with replacement) and keeps its calls in order:
  their output tokens, the new input that follows each, and the tool each called.
- Calls are grouped into turns. The first and the last turn hold one call each (a plan, an answer). Each turn
  between forks with probability ``fork``: it takes ``2..max_width`` consecutive calls, which then run side by
  side on the same prompt (``Turn.parallel``), each followed by its own tool; the next turn joins them, its new
  input the sum of what followed each (the tools' results), so a program's token count is its template's.
- Each tool's seconds are drawn from that tool's measured durations pooled over the whole trace file (the
  tool-duration distribution a deployment learns), not the template's own recorded value. The last call calls
  no tool: the program ends with its answer.

Deterministic for a given ``seed``. The output is a trace file (``program_to_json``) that ``tether replay``
reads; ``compiled: true`` on each line tells the replay that the client may give static hints.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from tether.runtime.replay.workload import Call, TraceProgram, Turn

DEFAULT_FORK = 0.5
DEFAULT_MAX_WIDTH = 4


def tool_durations(traces: Sequence[TraceProgram]) -> dict[str, list[float]]:
    """Each tool's measured durations (never negative), over every call of every program."""
    seen: dict[str, list[float]] = defaultdict(list)
    for p in traces:
        for t in p.turns:
            if t.tool is not None:
                seen[t.tool].append(t.wait_seconds)
    return dict(seen)


def compile_programs(
    traces: Sequence[TraceProgram],
    n: int,
    seed: int,
    *,
    fork: float = DEFAULT_FORK,
    max_width: int = DEFAULT_MAX_WIDTH,
) -> list[TraceProgram]:
    """``n`` compiled programs built from ``traces`` (see the module docstring)."""
    if not traces:
        raise ValueError("no trace programs to build compiled programs from")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0.0 <= fork <= 1.0:
        raise ValueError(f"fork must be within [0, 1], got {fork}")
    if max_width < 2:
        raise ValueError(f"max_width must be >= 2, got {max_width}")
    compiled = next((p.program_id for p in traces if p.compiled), None)
    if compiled is not None:
        raise ValueError(f"program {compiled!r} is compiled already: build from an agent trace")
    durations = tool_durations(traces)
    rng = random.Random(seed)
    return [_compile(rng.choice(traces), f"compiled-{i}", rng, durations, fork, max_width) for i in range(n)]


def _compile(
    template: TraceProgram,
    pid: str,
    rng: random.Random,
    durations: dict[str, list[float]],
    fork: float,
    max_width: int,
) -> TraceProgram:
    src = template.turns
    groups: list[list[int]] = [[0]]  # turn -> the template's calls it holds
    k = 1
    while k < len(src):
        forkable = len(src) - 1 - k  # calls from here up to, not including, the last (the answer stays alone)
        width = 1
        if forkable >= 2 and rng.random() < fork:
            width = min(rng.randint(2, max_width), forkable)
        groups.append(list(range(k, k + width)))
        k += width
    turns: list[Turn] = []
    prompt = 0
    for g, calls in enumerate(groups):
        last = g == len(groups) - 1
        made = [_call(src[c], rng, durations, none=last) for c in calls]
        if g == 0:
            new = src[0].prompt_tokens
        else:
            # the results of the previous turn's tools: what followed each of its calls in the template
            new = sum(src[c].new_input_tokens for c in range(groups[g - 1][0] + 1, calls[0] + 1))
        prompt += new
        turn = Turn(prompt, new, made[0].output_tokens, made[0].tool, made[0].tool_seconds, tuple(made[1:]))
        turns.append(turn)
        prompt += turn.joined_output_tokens
    return TraceProgram(f"{pid}/{template.program_id}", tuple(turns), None, compiled=True)


def _call(turn: Turn, rng: random.Random, durations: dict[str, list[float]], none: bool) -> Call:
    if none or turn.tool is None:
        return Call(turn.output_tokens, None, None)
    return Call(turn.output_tokens, turn.tool, rng.choice(durations[turn.tool]))
