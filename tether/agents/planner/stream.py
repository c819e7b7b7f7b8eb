"""``PlanStreamParser``: tasks as soon as their line is complete, while the planner is still generating."""

from __future__ import annotations

from typing import Any

from tether.agents.planner.parse import PlanBuilder
from tether.agents.planner.plan import PlanError, PlanTask


class PlanStreamParser:
    """Incremental ``parse_plan``: ``feed`` text in chunks split anywhere (mid-line, mid-reference,
    mid-escape); each call returns the tasks whose line it completed (a newline seen). ``close`` parses a
    last line without a newline. The tasks returned over all calls equal ``parse_plan(whole_text, tools)``,
    and a bad line raises the same ``PlanError`` (same line number), after which the parser stays failed:
    every later call raises it again."""

    def __init__(self, tools: Any = None) -> None:
        self._builder = PlanBuilder(tools)
        self._buffer = ""
        self._error: PlanError | None = None
        self._closed = False

    def feed(self, chunk: str) -> list[PlanTask]:
        if self._closed:
            raise RuntimeError("PlanStreamParser.feed after close")
        if self._error is not None:
            raise self._error
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split("\n")
        return self._lines(lines)

    def close(self) -> list[PlanTask]:
        if self._error is not None:
            raise self._error
        if self._closed:
            return []
        self._closed = True
        rest, self._buffer = self._buffer, ""
        return self._lines([rest]) if rest else []

    def _lines(self, lines: list[str]) -> list[PlanTask]:
        tasks = []
        for line in lines:
            try:
                task = self._builder.add_line(line)
            except PlanError as exc:
                self._error = exc
                raise
            if task is not None:
                tasks.append(task)
        return tasks
