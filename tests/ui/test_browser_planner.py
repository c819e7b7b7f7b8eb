"""A planner run in a real headless Chromium: recorded for real (``AgentRuntime`` with a ``RunRecorder`` run,
the LLMCompiler planner on a scripted backend: a plan whose second task fails and third is not run, a replan,
a second round, an answer), its DAG is one program's graph: plan -> tasks -> join -> plan -> tasks -> join ->
answer."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.agents.test_planner import TOOLS, ScriptedBackend
from tests.agents.test_planner_trace import REPLIES
from tests.ui.conftest import REPO
from tests.ui.process import ui_process
from tests.ui.test_browser import TIMEOUT_MS, open_run, screenshot
from tether.agents.planner.agent import Planner
from tether.agents.runtime import AgentRuntime

pytestmark = pytest.mark.slow  # a `tether ui` process and headless Chromium

EDGES = {
    ("plan0", "p0_t1"), ("plan0", "p0_t2"), ("p0_t1", "p0_t2"), ("plan0", "p0_t3"), ("p0_t2", "p0_t3"),
    ("plan0", "p0_t4"), ("p0_t1", "join0"), ("p0_t2", "join0"), ("p0_t3", "join0"), ("p0_t4", "join0"),
    ("join0", "plan1"), ("plan1", "p1_t1"), ("p1_t1", "join1"), ("join1", "answer"),
}  # fmt: skip


async def record_planner_run(root: Path) -> tuple[str, str]:
    """The planner answers one question in a recorded run under ``root``: (run id, the planner's program id)."""
    rt = await AgentRuntime.create(TOOLS, backend=ScriptedBackend(list(REPLIES), pause=0.01), trace_dir=root)
    try:
        async with Planner(TOOLS, runtime=rt, max_replans=1) as planner:
            result = await planner.run("What is 3 + 1?")
    finally:
        await rt.close()
    assert result.answer == "5"
    return rt.recorder.run_id, result.trace_id


@pytest.fixture(scope="module")
def planner_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    root = tmp_path_factory.mktemp("planner-runs")
    # on a thread of its own, with its own event loop: the browser's fixtures may hold one on this thread
    with ThreadPoolExecutor(1) as pool:
        run_id, program_id = pool.submit(asyncio.run, record_planner_run(root)).result(timeout=120)
    return root, run_id, program_id


def test_the_planner_run_draws_as_one_dag_of_rounds_ending_in_the_answer(tab, planner_run):
    root, run_id, program_id = planner_run
    with ui_process(root, cwd=REPO) as base:
        open_run(tab, base, run_id)
        page = tab.page
        dag = page.locator(f'.dag-program[data-program="{program_id}"] svg.dag')
        dag.wait_for(timeout=TIMEOUT_MS)
        # the run is one program: no list of programs to pick from
        assert page.locator(".dag-program").count() == 1
        drawn = dag.locator(".dag-edge").evaluate_all("es => es.map(e => [e.dataset.from, e.dataset.to])")
        assert {tuple(e) for e in drawn} == EDGES and len(drawn) == len(EDGES)
        status = dict(
            dag.locator("[data-node]").evaluate_all("ns => ns.map(n => [n.dataset.node, n.dataset.status])")
        )
        assert status == {
            "plan0": "ok", "p0_t1": "ok", "p0_t2": "error", "p0_t3": "skipped", "p0_t4": "ok", "join0": "ok",
            "plan1": "ok", "p1_t1": "ok", "join1": "ok", "answer": "ok",
        }  # fmt: skip
        layer = dict(
            dag.locator("[data-node]").evaluate_all("ns => ns.map(n => [n.dataset.node, +n.dataset.layer])")
        )
        rounds = ["plan0", "p0_t1", "p0_t2", "p0_t3", "join0", "plan1", "p1_t1", "join1", "answer"]
        assert [layer[n] for n in rounds] == list(range(len(rounds)))  # columns by dependency depth
        assert layer["p0_t4"] == 1
        assert "answer · 5" in dag.locator('[data-node="answer"]').text_content()
        dag.locator('[data-node="p0_t3"]').click()
        details = page.locator("#details")
        assert (
            "not run: it needs $2, which failed" in details.locator('[data-attr="reason"] td').text_content()
        )
        dag.locator('[data-node="p0_t1"]').click()  # a task is a node of the run: its tool call is its own
        assert details.locator('section[data-event="tool_call"]').count() == 1
        screenshot(page, "planner-dag")
    assert tab.errors == []
