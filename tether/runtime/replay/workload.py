"""Agent workload traces (``../shared/workloads/*.jsonl``): one program per line, turns with token counts and
the tool that followed. The invariant ``prompt[k] = prompt[k-1] + output[k-1] + new_input[k]`` is checked, so a
replayer can rebuild token sequences whose prefixes really repeat.

A compiled program (``"compiled": true``, written by ``compiled.py``) is a workflow whose calls are fixed in
advance. A turn of it may fork: ``"parallel": [{"output_tokens", "tool", "tool_seconds"}, ...]`` are
calls that run beside the turn's own, on the same prompt, each followed by its own tool. The next turn joins them:
its prompt is the previous prompt, then every call's output in order (the turn's own first), then its new input.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.jsonl import JsonlError, parse_jsonl

log = logging.getLogger(__name__)


class WorkloadError(ValueError):
    """A trace line is malformed; the message names the file, line, program and field."""


@dataclass(frozen=True)
class Call:
    """One LLM call of a turn and the tool after it (``None``: none)."""

    output_tokens: int
    tool: str | None
    tool_seconds: float | None

    @property
    def wait_seconds(self) -> float:
        return max(0.0, self.tool_seconds or 0.0)


@dataclass(frozen=True)
class Turn:
    prompt_tokens: int
    new_input_tokens: int
    output_tokens: int
    tool: str | None
    tool_seconds: float | None  # as measured; a few real traces hold small negative values (clock skew)
    parallel: tuple[Call, ...] = ()  # calls forked beside this one on the same prompt (compiled programs)

    @property
    def wait_seconds(self) -> float:
        """The pause after this turn's own call: its tool's duration, never negative."""
        return max(0.0, self.tool_seconds or 0.0)

    @property
    def calls(self) -> tuple[Call, ...]:
        """The turn's own call first, then the forked ones."""
        return (Call(self.output_tokens, self.tool, self.tool_seconds), *self.parallel)

    @property
    def joined_output_tokens(self) -> int:
        """What the turn adds to the next prompt: every call's output."""
        return self.output_tokens + sum(c.output_tokens for c in self.parallel)


@dataclass(frozen=True)
class TraceProgram:
    """One program of a trace: its turns as recorded (not ``tether.dag.Program``, the workflow graph)."""

    program_id: str
    turns: tuple[Turn, ...]
    arrival_s: float | None = None
    compiled: bool = False  # a workflow whose calls are fixed in advance: its client may say what comes next

    @property
    def num_turns(self) -> int:
        return len(self.turns)

    @property
    def num_calls(self) -> int:
        return sum(len(t.calls) for t in self.turns)

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
            parallel = tuple(
                Call(
                    max(1, round(c.output_tokens * token_scale)),
                    c.tool,
                    None if c.tool_seconds is None else c.tool_seconds * time_scale,
                )
                for c in t.parallel
            )
            turn = Turn(prompt, new, out, t.tool, secs, parallel)
            turns.append(turn)
            prompt += turn.joined_output_tokens
        return TraceProgram(self.program_id, tuple(turns), self.arrival_s, self.compiled)


def program_to_json(program: TraceProgram) -> dict:
    """The trace line ``load_workload`` reads back as ``program``."""
    turns = []
    for t in program.turns:
        doc: dict = {
            "prompt_tokens": t.prompt_tokens,
            "new_input_tokens": t.new_input_tokens,
            "output_tokens": t.output_tokens,
            "tool": t.tool,
            "tool_seconds": t.tool_seconds,
        }
        if t.parallel:
            doc["parallel"] = [
                {"output_tokens": c.output_tokens, "tool": c.tool, "tool_seconds": c.tool_seconds}
                for c in t.parallel
            ]
        turns.append(doc)
    line: dict = {"program_id": program.program_id}
    if program.compiled:
        line["compiled"] = True
    if program.arrival_s is not None:
        line["arrival_s"] = program.arrival_s
    line["turns"] = turns
    return line


def load_workload(path: str | Path) -> list[TraceProgram]:
    path = Path(path)
    if not path.is_file():
        raise WorkloadError(f"{path}: no such workload file")
    lines = path.read_text().splitlines()
    try:
        programs = [_parse(r.doc, f"{path}:{r.line}") for r in parse_jsonl(lines, path)]
    except JsonlError as exc:
        raise WorkloadError(f"{path}:{exc.line}: not JSON: {exc.error}") from None
    if not programs:
        raise WorkloadError(f"{path}: no programs")
    negative = sum(1 for p in programs for t in p.turns if (t.tool_seconds or 0.0) < 0)
    if negative:
        log.warning("%s: %d turns have negative tool_seconds; replay waits 0 s for them", path, negative)
    return programs


def _parse(doc: Any, where: str) -> TraceProgram:
    pid = doc.get("program_id") if isinstance(doc, dict) else None
    if not isinstance(pid, str) or not pid:
        raise WorkloadError(f"{where}: missing program_id")
    raw_turns = doc.get("turns")
    if not isinstance(raw_turns, list) or not raw_turns:
        raise WorkloadError(f"{where}: program {pid!r} has no turns")
    turns = tuple(_turn(t, f"{where}: program {pid!r} turn {k}") for k, t in enumerate(raw_turns))
    for k in range(1, len(turns)):
        want = turns[k - 1].prompt_tokens + turns[k - 1].joined_output_tokens + turns[k].new_input_tokens
        if turns[k].prompt_tokens != want:
            raise WorkloadError(
                f"{where}: program {pid!r} turn {k}: prompt_tokens {turns[k].prompt_tokens} != previous prompt "
                f"+ output + new_input = {want}"
            )
    compiled = doc.get("compiled", False)
    if not isinstance(compiled, bool):
        raise WorkloadError(f"{where}: program {pid!r}: compiled must be true or false, got {compiled!r}")
    if turns[-1].parallel:
        raise WorkloadError(f"{where}: program {pid!r} turn {len(turns) - 1}: the last turn cannot fork")
    if not compiled and any(t.parallel for t in turns):
        raise WorkloadError(f"{where}: program {pid!r}: parallel calls need \"compiled\": true")
    arrival = doc.get("arrival_s")
    return TraceProgram(pid, turns, float(arrival) if arrival is not None else None, compiled)


def _turn(t: object, where: str) -> Turn:
    if not isinstance(t, dict):
        raise WorkloadError(f"{where}: not an object")
    raw_parallel = t.get("parallel", [])
    if not isinstance(raw_parallel, list):
        raise WorkloadError(f"{where}: parallel must be a list of calls, got {raw_parallel!r}")
    parallel = tuple(_call(c, f"{where} parallel[{j}]") for j, c in enumerate(raw_parallel))
    ints = {}
    for name in ("prompt_tokens", "new_input_tokens", "output_tokens"):
        v = t.get(name)
        if not isinstance(v, int) or isinstance(v, bool) or v < (1 if name != "new_input_tokens" else 0):
            raise WorkloadError(f"{where}: {name} must be a positive integer, got {v!r}")
        ints[name] = v
    tool, secs = _tool(t, where)
    return Turn(ints["prompt_tokens"], ints["new_input_tokens"], ints["output_tokens"], tool, secs, parallel)


def _call(c: object, where: str) -> Call:
    if not isinstance(c, dict):
        raise WorkloadError(f"{where}: not an object")
    out = c.get("output_tokens")
    if not isinstance(out, int) or isinstance(out, bool) or out < 1:
        raise WorkloadError(f"{where}: output_tokens must be a positive integer, got {out!r}")
    return Call(out, *_tool(c, where))


def _tool(t: dict, where: str) -> tuple[str | None, float | None]:
    tool, secs = t.get("tool"), t.get("tool_seconds")
    if tool is not None and not isinstance(tool, str):
        raise WorkloadError(f"{where}: tool must be a string or null, got {tool!r}")
    if secs is not None and (
        not isinstance(secs, (int, float)) or isinstance(secs, bool) or not math.isfinite(secs)
    ):
        raise WorkloadError(f"{where}: tool_seconds must be a finite number, got {secs!r}")
    if tool is not None and secs is None:
        raise WorkloadError(f"{where}: tool {tool!r} has no tool_seconds")
    return tool, None if secs is None else float(secs)
