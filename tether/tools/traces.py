"""Read the tool calls out of a workload trace (``../shared/workloads/*.jsonl``, one program per line).

Only the fields this package needs are checked: ``program_id`` and, per turn, ``tool`` (str or null) and
``tool_seconds`` (a finite number >= 0 whenever ``tool`` is not null). Blank lines are skipped.

Some real traces hold a few slightly negative durations (measurement artifacts of the original harness:
``terminal_bench_agents.jsonl`` has two of 2,140). ``on_negative`` says what to do with them: ``"error"``
(the default), ``"clamp"`` to 0.0, or ``"skip"`` the call. NaN, infinite and non-numeric durations are
always errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tether.jsonl import JsonlError, read_jsonl
from tether.tools.distributions import check_duration
from tether.tools.errors import ToolStatsError

NegativePolicy = Literal["error", "clamp", "skip"]


@dataclass(frozen=True)
class ToolCallRecord:
    """One measured tool call of a trace: which program, which turn (0-based), which tool, how long."""

    program_id: str
    turn: int
    tool: str
    seconds: float


def iter_tool_calls(path: str | Path, *, on_negative: NegativePolicy = "error") -> Iterator[ToolCallRecord]:
    """Yield every turn with a non-null tool, in file order (negative durations as ``on_negative`` says).

    Raises ``ToolStatsError`` naming the file and 1-based line number for a line that is not JSON, not a
    program object, or has a turn whose tool or duration is malformed; and naming the file if it can't be read.
    """
    path = Path(path)
    if on_negative not in ("error", "clamp", "skip"):
        raise ToolStatsError(f"on_negative must be 'error', 'clamp' or 'skip', got {on_negative!r}")
    try:
        for record in read_jsonl(path):
            yield from _program_calls(path, record.line, record.doc, on_negative)
    except JsonlError as e:
        why = f"not valid JSON ({e.error.msg} at column {e.error.colno})"
        raise ToolStatsError(f"{path}:{e.line}: {why}", path=path, line=e.line) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ToolStatsError(f"{path}: cannot read workload trace: {e}", path=path) from e


def read_tool_calls(path: str | Path, *, on_negative: NegativePolicy = "error") -> list[ToolCallRecord]:
    """All of ``iter_tool_calls(path, on_negative=...)``; nothing is returned if any line is malformed."""
    return list(iter_tool_calls(path, on_negative=on_negative))


def _program_calls(
    path: Path, line_no: int, program: Any, on_negative: NegativePolicy
) -> Iterator[ToolCallRecord]:
    def fail(why: str, tool: str | None = None) -> ToolStatsError:
        return ToolStatsError(f"{path}:{line_no}: {why}", tool=tool, path=path, line=line_no)

    if not isinstance(program, dict):
        raise fail(f"expected a program object, got {type(program).__name__}")
    program_id = program.get("program_id")
    if not isinstance(program_id, str):
        raise fail(f"program_id must be a string, got {program_id!r}")
    turns = program.get("turns")
    if not isinstance(turns, list):
        raise fail(f"program {program_id!r}: turns must be a list, got {type(turns).__name__}")
    for k, turn in enumerate(turns):
        where = f"program {program_id!r} turn {k}"
        if not isinstance(turn, dict):
            raise fail(f"{where}: expected a turn object, got {type(turn).__name__}")
        tool = turn.get("tool")
        if tool is None:
            continue
        if not isinstance(tool, str) or not tool:
            raise fail(f"{where}: tool must be a non-empty string or null, got {tool!r}")
        raw = turn.get("tool_seconds")
        if on_negative != "error" and _is_negative_number(raw):
            if on_negative == "skip":
                continue
            raw = 0.0
        try:
            seconds = check_duration(raw, tool=tool)
        except ToolStatsError as e:
            hint = " (on_negative='clamp' or 'skip' accepts it)" if _is_negative_number(raw) else ""
            raise fail(f"{where}: {e}{hint}", tool=tool) from None
        yield ToolCallRecord(program_id=program_id, turn=k, tool=tool, seconds=seconds)


def _is_negative_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x < 0
