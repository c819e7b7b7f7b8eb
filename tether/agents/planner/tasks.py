"""A plan's tasks as tool-call nodes of the planner's own run (docs/agents.md, "Tasks").

    plan line parsed ─► task: its needed tasks' observations ─► failed?   ─► not run (recorded: node_skipped)
                                                             └► resolved ─► ToolCall node p<r>_t<idx>
                                                                            (streamed from plan<r>, after the
                                                                            tasks it references) ─► Observation

A task that needs no other task is added the moment its line is parsed, while the plan still streams; one that
references tasks is added once they have observations. The executor runs the node like any other (its tool
runner, retries, the tool-duration statistics); ``on_error="value"`` makes a failing tool an observation with
``error``, so the run goes on. Arguments are substituted with ``resolve_args`` (bare ``$N`` keeps the
observation's type, ``${N}`` in a string gets its text form) and bound literally (``${`` written ``$${``), so no
argument text is ever read as a template.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.agents.planner import record
from tether.agents.planner.plan import PlanError, PlanTask, resolve_args
from tether.agents.result import Observation
from tether.dag import ToolCall, ToolFailure
from tether.dag.errors import DagError
from tether.runtime.executor import ProgramRun


@dataclass
class Round:
    """One plan being streamed and run: the tasks dispatched, a future per task (its ``Observation``), the
    tasks the run executes as nodes (``executed``; the others are recorded)."""

    number: int
    tasks: list[PlanTask] = field(default_factory=list)
    futures: dict[int, asyncio.Future[Observation]] = field(default_factory=dict)
    jobs: list[asyncio.Task[None]] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    executed: set[int] = field(default_factory=set)
    error: PlanError | None = None
    joined: bool = False
    finish_reason: str | None = None
    truncated: bool = False  # the last line was cut off at the token limit (dropped)

    def exits(self) -> tuple[list[str], list[str]]:
        """``(depends, after)`` of what follows the round (``record.round_exits``)."""
        return record.round_exits(self.number, self.tasks, self.executed)


class TaskRunner:
    """Dispatches a round's tasks into ``run``. ``names``: each tool's argument names in schema order (a
    positional argument gets its name from there)."""

    def __init__(self, run: ProgramRun, names: Mapping[str, list[str]]) -> None:
        self.run = run
        self.names = names

    def take(self, rnd: Round, tasks: list[PlanTask]) -> None:
        """Add newly parsed ``tasks`` to the round and dispatch each; a join task ends the plan (what follows
        it is dropped)."""
        for task in tasks:
            if rnd.joined:
                return
            rnd.tasks.append(task)
            if task.is_join:
                rnd.joined = True
            else:
                self._dispatch(rnd, task)

    def _dispatch(self, rnd: Round, task: PlanTask) -> None:
        rnd.futures[task.idx] = asyncio.get_running_loop().create_future()
        added = None if task.deps else self._add(rnd, task, {})  # nothing to wait for: added now
        rnd.jobs.append(asyncio.create_task(self._job(rnd, task, added)))

    async def _job(
        self, rnd: Round, task: PlanTask, added: tuple[str, dict[str, Any]] | Observation | None
    ) -> None:
        try:
            if added is None:
                added = await self._after_deps(rnd, task)
            obs = added if isinstance(added, Observation) else await self._observe(task, *added)
        except asyncio.CancelledError:
            if task.idx not in rnd.executed:
                with contextlib.suppress(ValueError):  # the trace may be closed already: the cancel goes on
                    record.task_cancelled(self.run, rnd.number, task)
            raise
        rnd.observations.append(obs)
        rnd.futures[task.idx].set_result(obs)

    async def _after_deps(self, rnd: Round, task: PlanTask) -> tuple[str, dict[str, Any]] | Observation:
        """The task once the tasks it references have observations: added, or not run (one failed)."""
        deps = [await rnd.futures[d] for d in sorted(task.deps)]
        failed = [d.task for d in deps if d.error is not None]
        if not failed:
            return self._add(rnd, task, {d.task: d.value for d in deps})
        needs = ", ".join(f"${i}" for i in failed)
        obs = Observation(task.idx, task.tool, {}, error=f"{record.NOT_RUN}: it needs {needs}, which failed")
        record.task_not_run(self.run, rnd.number, task, obs, "")
        return obs

    def _add(
        self, rnd: Round, task: PlanTask, values: dict[int, Any]
    ) -> tuple[str, dict[str, Any]] | Observation:
        """Resolve the task's arguments and add its node: ``(node id, arguments)``, or the ``Observation`` of
        a task whose arguments did not resolve or that the run rejected (recorded as ``node_error``)."""
        node_id = record.task_node(rnd.number, task.idx)
        kwargs: dict[str, Any] = {}
        try:
            args, named = resolve_args(task, values)
            kwargs = self._keywords(task, args, named)
            depends = tuple(record.task_node(rnd.number, d) for d in sorted(task.deps))
            node = ToolCall(
                id=node_id, tool=task.tool, args=_literal(kwargs), depends=depends, on_error="value"
            )
            self.run.add_node(node, streamed_from=record.plan_node(rnd.number))
        except (PlanError, DagError) as exc:
            kind = "PlanError" if isinstance(exc, PlanError) else type(exc).__name__
            text = str(exc) if isinstance(exc, PlanError) else f"{kind}: {exc}"
            obs = Observation(task.idx, task.tool, kwargs or dict(task.kwargs), error=text)
            record.task_not_run(self.run, rnd.number, task, obs, kind)
            return obs
        rnd.executed.add(task.idx)
        return node_id, kwargs

    async def _observe(self, task: PlanTask, node_id: str, kwargs: dict[str, Any]) -> Observation:
        start = time.perf_counter()
        value = await self.run.node_future(node_id)
        seconds = time.perf_counter() - start
        if isinstance(value, ToolFailure):
            error = f"{value.error_type}: {value.message}"
            return Observation(task.idx, task.tool, kwargs, None, error, seconds)
        return Observation(task.idx, task.tool, kwargs, value, None, seconds)

    def _keywords(self, task: PlanTask, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Positional arguments named by the tool's schema order."""
        names = self.names.get(task.tool, [])
        if len(args) > len(names):
            raise PlanError(
                f"{task.tool} takes at most {len(names)} arguments", kind="malformed", task=task.idx
            )
        out = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key in out:
                raise PlanError(f"{task.tool}: {key!r} given twice", kind="malformed", task=task.idx)
            out[key] = value
        return out


def _literal(value: Any) -> Any:
    """``value`` as a node argument that renders to itself: ``${`` in its strings written ``$${`` (dict keys are
    not templates)."""
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, (list, tuple)):
        return [_literal(v) for v in value]
    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    return value
