"""Agent workload traces (``../shared/workloads/*.jsonl``): one program per line, turns with token counts and
the tool that followed. The invariant ``prompt[k] = prompt[k-1] + output[k-1] + new_input[k]`` is checked, so a
replayer can rebuild token sequences whose prefixes really repeat."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class WorkloadError(ValueError):
    """A trace line is malformed; the message names the file, line, program and field."""


@dataclass(frozen=True)
class Turn:
    prompt_tokens: int
    new_input_tokens: int
    output_tokens: int
    tool: str | None
    tool_seconds: float | None  # as measured; a few real traces hold small negative values (clock skew)

    @property
    def wait_seconds(self) -> float:
        """The pause after this turn: the tool's duration, never negative."""
        return max(0.0, self.tool_seconds or 0.0)


@dataclass(frozen=True)
class TraceProgram:
    """One program of a trace: its turns as recorded (not ``tether.dag.Program``, the workflow graph)."""

    program_id: str
    turns: tuple[Turn, ...]
    arrival_s: float | None = None

    @property
    def num_turns(self) -> int:
        return len(self.turns)

    def scaled(self, token_scale: float, time_scale: float) -> TraceProgram:
        """Token counts times ``token_scale`` (at least 1 per turn, invariant kept exactly) and tool seconds
        times ``time_scale``."""
        turns: list[Turn] = []
        prompt = 0
        for k, t in enumerate(self.turns):
            new = (
                max(1, round(t.new_input_tokens * token_scale))
                if k
                else max(1, round(t.prompt_tokens * token_scale))
            )
            prompt = prompt + new if k else new
            out = max(1, round(t.output_tokens * token_scale))
            secs = None if t.tool_seconds is None else t.tool_seconds * time_scale
            turns.append(Turn(prompt, new, out, t.tool, secs))
            prompt += out
        return TraceProgram(self.program_id, tuple(turns), self.arrival_s)


def load_workload(path: str | Path) -> list[TraceProgram]:
    path = Path(path)
    if not path.is_file():
        raise WorkloadError(f"{path}: no such workload file")
    programs = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            programs.append(_parse(line, f"{path}:{lineno}"))
    if not programs:
        raise WorkloadError(f"{path}: no programs")
    negative = sum(1 for p in programs for t in p.turns if (t.tool_seconds or 0.0) < 0)
    if negative:
        log.warning("%s: %d turns have negative tool_seconds; replay waits 0 s for them", path, negative)
    return programs


def _parse(line: str, where: str) -> TraceProgram:
    try:
        doc = json.loads(line)
    except json.JSONDecodeError as exc:
        raise WorkloadError(f"{where}: not JSON: {exc}") from None
    pid = doc.get("program_id") if isinstance(doc, dict) else None
    if not isinstance(pid, str) or not pid:
        raise WorkloadError(f"{where}: missing program_id")
    raw_turns = doc.get("turns")
    if not isinstance(raw_turns, list) or not raw_turns:
        raise WorkloadError(f"{where}: program {pid!r} has no turns")
    turns = tuple(_turn(t, f"{where}: program {pid!r} turn {k}") for k, t in enumerate(raw_turns))
    for k in range(1, len(turns)):
        want = turns[k - 1].prompt_tokens + turns[k - 1].output_tokens + turns[k].new_input_tokens
        if turns[k].prompt_tokens != want:
            raise WorkloadError(
                f"{where}: program {pid!r} turn {k}: prompt_tokens {turns[k].prompt_tokens} != previous prompt "
                f"+ output + new_input = {want}"
            )
    arrival = doc.get("arrival_s")
    return TraceProgram(pid, turns, float(arrival) if arrival is not None else None)


def _turn(t: object, where: str) -> Turn:
    if not isinstance(t, dict):
        raise WorkloadError(f"{where}: not an object")
    ints = {}
    for name in ("prompt_tokens", "new_input_tokens", "output_tokens"):
        v = t.get(name)
        if not isinstance(v, int) or isinstance(v, bool) or v < (1 if name != "new_input_tokens" else 0):
            raise WorkloadError(f"{where}: {name} must be a positive integer, got {v!r}")
        ints[name] = v
    tool, secs = t.get("tool"), t.get("tool_seconds")
    if tool is not None and not isinstance(tool, str):
        raise WorkloadError(f"{where}: tool must be a string or null, got {tool!r}")
    if secs is not None and (not isinstance(secs, (int, float)) or not math.isfinite(secs)):
        raise WorkloadError(f"{where}: tool_seconds must be a finite number, got {secs!r}")
    if tool is not None and secs is None:
        raise WorkloadError(f"{where}: tool {tool!r} has no tool_seconds")
    return Turn(
        ints["prompt_tokens"],
        ints["new_input_tokens"],
        ints["output_tokens"],
        tool,
        None if secs is None else float(secs),
    )
