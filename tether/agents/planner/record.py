"""What a planner run records in its held program's trace, so that the run draws as one DAG (docs/agents.md,
"Trace"), a round after the other::

    plan0 ─► p0.t1 ─► p0.t3 ─► join0 ─► plan1 ─► p1.t1 ─► join1 ─► answer
         └─► p0.t2 ────────────┘

The LLM calls (``plan<r>``, ``join<r>``) are nodes the run executes, added ``after`` the previous step. A task
runs as a program of its own (``<run>.p<r>.t<idx>``), so the run records its node: ``node_added`` when its line
is parsed (deps: the plan and the tasks it references), ``node_start`` when its tool call starts, then
``node_end`` / ``node_error`` (its tool failed, or its arguments did not resolve) / ``node_skipped`` (not run:
a task it needs failed) / ``node_cancelled``. The joiner's answer is the ``answer`` node.
"""

from __future__ import annotations

import time
from typing import Any

from tether.agents.planner.plan import PlanTask
from tether.agents.result import Observation
from tether.runtime.executor import ProgramRun

ANSWER_NODE = "answer"
NOT_RUN = "not run"  # how a task's observation starts when a task it needs failed
OUTPUT_PREVIEW_CHARS = 2000


def plan_node(r: int) -> str:
    return f"plan{r}"


def join_node(r: int) -> str:
    return f"join{r}"


def task_node(r: int, idx: int) -> str:
    """The node of task ``idx`` of round ``r`` (its program is ``<run>.p<r>.t<idx>``)."""
    return f"p{r}.t{idx}"


def task_deps(r: int, task: PlanTask) -> list[str]:
    """The plan that wrote the task, then the tasks it references."""
    return [plan_node(r), *(task_node(r, d) for d in sorted(task.deps))]


def round_exits(r: int, tasks: list[PlanTask]) -> list[str]:
    """What follows a round (its joiner call, or the next plan after a plan error): its tasks, else its plan."""
    nodes = [task_node(r, t.idx) for t in tasks if not t.is_join]
    return nodes or [plan_node(r)]


def task_added(run: ProgramRun, r: int, task: PlanTask) -> None:
    doc = {"id": task_node(r, task.idx), "kind": "tool", "tool": task.tool, "deps": task_deps(r, task)}
    run.record("node_added", doc["id"], {"node": doc})


def task_started(run: ProgramRun, r: int, task: PlanTask, program_id: str) -> float:
    """The task's tool call starts (as the program ``program_id``); returns the start (``time.time()``)."""
    attrs = {"category": "node", "node_kind": "tool", "deps": task_deps(r, task), "program": program_id}
    run.record("node_start", task_node(r, task.idx), attrs)
    return time.time()


def task_ended(run: ProgramRun, r: int, obs: Observation, start: float | None) -> None:
    """The task's outcome. ``start`` is ``None`` for a task that never started: not run (a task it needs
    failed: ``node_skipped``) or its arguments did not resolve (``node_error``, ``PlanError``)."""
    node = task_node(r, obs.task)
    attrs: dict[str, Any] = {"category": "node"}
    if start is not None:
        attrs["duration_s"] = time.time() - start
    if obs.error is None:
        run.record("node_end", node, attrs | {"output": preview(obs.value)}, start)
    elif start is None and obs.error.startswith(NOT_RUN):
        run.record("node_skipped", node, attrs | {"status": "skipped", "reason": obs.error})
    else:
        prefix, _, message = obs.error.partition(": ")
        kind = "PlanError" if start is None else prefix if message and prefix.isidentifier() else "ToolError"
        run.record("node_error", node, attrs | {"error_type": kind, "error": obs.error}, start)


def task_cancelled(run: ProgramRun, r: int, task: PlanTask, start: float | None) -> None:
    attrs: dict[str, Any] = {"category": "node"}
    if start is not None:
        attrs["duration_s"] = time.time() - start
    run.record("node_cancelled", task_node(r, task.idx), attrs, start)


def answer(run: ProgramRun, after: list[str], text: str) -> None:
    """The run's answer, as the node that ends its DAG."""
    now = time.time()
    run.record(
        "node_added",
        ANSWER_NODE,
        {"node": {"id": ANSWER_NODE, "kind": "answer", "tool": None, "deps": after}},
    )
    run.record("node_end", ANSWER_NODE, {"category": "node", "duration_s": 0.0, "output": preview(text)}, now)


def preview(value: Any) -> Any:
    """A JSON-able value as the trace keeps it: a long text cut to ``OUTPUT_PREVIEW_CHARS``."""
    text = value if isinstance(value, str) else None
    if text is not None and len(text) > OUTPUT_PREVIEW_CHARS:
        return text[:OUTPUT_PREVIEW_CHARS] + "…"
    if isinstance(value, (str, int, float, bool, type(None), list, dict)):
        return value
    return str(value)
