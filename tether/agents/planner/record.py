"""The planner run's DAG (docs/agents.md, "Trace"), a round after the other::

    plan0 ─► p0_t1 ─► p0_t3 ─► join0 ─► plan1 ─► p1_t1 ─► join1 ─► answer
         └─► p0_t2 ────────────┘

Every node is a node of the run's one held program: the LLM calls (``plan<r>``, ``join<r>``) and the tasks
(``p<r>_t<idx>``, tool calls streamed from their plan, after the tasks they reference), so the executor's own
node events draw it. What the run does not execute is recorded here with ``ProgramRun.record``: a task that
never runs (a task it needs failed: ``node_skipped``; its arguments did not resolve or were rejected:
``node_error``; cancelled while it waited for the tasks it needs: ``node_cancelled``) and the answer, the
``answer`` node that ends the DAG.
"""

from __future__ import annotations

import time
from collections.abc import Collection
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
    """The node of task ``idx`` of round ``r``."""
    return f"p{r}_t{idx}"


def task_deps(r: int, task: PlanTask) -> list[str]:
    """The plan that wrote the task, then the tasks it references."""
    return [plan_node(r), *(task_node(r, d) for d in sorted(task.deps))]


def round_exits(r: int, tasks: list[PlanTask], executed: Collection[int]) -> tuple[list[str], list[str]]:
    """What follows a round (its joiner call, or the next plan after a plan error): ``(depends, after)``, the
    round's task nodes the run executed (dependencies) and the ones recorded (drawn before it only); the plan
    when the round has no task."""
    tasks = [t for t in tasks if not t.is_join]
    if not tasks:
        return [plan_node(r)], []
    depends = [task_node(r, t.idx) for t in tasks if t.idx in executed]
    return depends, [task_node(r, t.idx) for t in tasks if t.idx not in executed]


def _added(run: ProgramRun, r: int, task: PlanTask) -> str:
    node = task_node(r, task.idx)
    run.record(
        "node_added",
        node,
        {"node": {"id": node, "kind": "tool", "tool": task.tool, "deps": task_deps(r, task)}},
    )
    return node


def task_not_run(run: ProgramRun, r: int, task: PlanTask, obs: Observation, error_type: str) -> None:
    """A task the run does not execute: not run, as a task it needs failed (``node_skipped``), or its
    arguments did not resolve or were rejected (``node_error`` of ``error_type``)."""
    node = _added(run, r, task)
    assert obs.error is not None
    if obs.error.startswith(NOT_RUN):
        run.record("node_skipped", node, {"category": "node", "status": "skipped", "reason": obs.error})
    else:
        run.record("node_error", node, {"category": "node", "error_type": error_type, "error": obs.error})


def task_cancelled(run: ProgramRun, r: int, task: PlanTask) -> None:
    """A task cancelled while it waited for the tasks it needs (never added to the run)."""
    run.record("node_cancelled", _added(run, r, task), {"category": "node"})


def answer(run: ProgramRun, depends: list[str], text: str) -> None:
    """The run's answer, as the node that ends its DAG."""
    now = time.time()
    run.record(
        "node_added",
        ANSWER_NODE,
        {"node": {"id": ANSWER_NODE, "kind": "answer", "tool": None, "deps": depends}},
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
