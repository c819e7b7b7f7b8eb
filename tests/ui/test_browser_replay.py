"""The replay page in a real headless Chromium over a real ``tether replay --simulate --trace`` of 300 programs
(drawn from four Terminal-Bench-named ones): the page fits a 1,600 px viewport and stays a few screens tall,
the header says simulated time, rows are named by task, a search finds one program, the sorts order the rows,
and the selected program's DAG has its edges and real node states. The hand-written replay (tests/ui/traces.py,
not simulated) shows wall time."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.ui.conftest import REPO
from tests.ui.process import ui_process
from tests.ui.test_browser import TIMEOUT_MS, open_run, screenshot
from tether.runtime.tracing import load_run

pytestmark = pytest.mark.slow  # a simulated replay, a `tether ui` process and headless Chromium

STAMP = "2025-08-14__19-39-35"
TASKS = ["fix-git", "decommissioning-service-with-sensitive-data", "incompatible-python-fasttext.base_with_hint",
         "sqlite-with-gcov"]  # fmt: skip
DRAWN = 300
VIEWPORT = {"width": 1600, "height": 1000}


def program_line(task: str, turns: int) -> dict:
    """A trace program named as Terminal-Bench's are, its turns following the prompt invariant."""
    out, prompt = [], 0
    for k in range(turns):
        new = 60 if k == 0 else 12
        prompt += new
        last = k == turns - 1
        out.append({"prompt_tokens": prompt, "new_input_tokens": new, "output_tokens": 8 + k,
                    "tool": None if last else "bash:ls", "tool_seconds": None if last else 0.5 + k})  # fmt: skip
        prompt += 8 + k
    return {"program_id": f"{STAMP}/{task}/{task}.1-of-1.{STAMP}", "turns": out}


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, dict]]:
    """A ``tether ui`` over a simulated replay of 300 drawn programs: (base URL, run id, its traces)."""
    root = tmp_path_factory.mktemp("sim-replay")
    workload = root / "tb.jsonl"
    workload.write_text("".join(json.dumps(program_line(t, 3 + i)) + "\n" for i, t in enumerate(TASKS)))
    cmd = [sys.executable, "-m", "tether.cli", "replay", "--workload", str(workload), "--simulate",
           "--kv-blocks", "400", "--draw", str(DRAWN), "--rate", "4", "--policies", "vllm,tether",
           "--trace", "--trace-dir", str(root / "runs"), "--quiet"]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (run_dir,) = (root / "runs").glob("*/run.json")
    run = load_run(root / "runs", run_dir.parent.name)
    with ui_process(root / "runs", cwd=REPO) as base:
        yield base, run.meta["run_id"], run.traces


def jcts(events) -> dict[str, float]:
    return {e.program_id: e.attrs["duration_s"] for e in events if e.kind == "program_end"}


def row_ids(page) -> list[str]:
    return page.locator("#program-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.program)")


def open_simulated(tab, simulated) -> object:
    base, run_id, _ = simulated
    tab.page.set_viewport_size(VIEWPORT)
    open_run(tab, base, run_id)
    tab.page.wait_for_selector("#program-table", timeout=TIMEOUT_MS)
    return tab.page


def test_300_programs_fit_the_page_and_the_header_says_simulated_time(tab, simulated):
    page = open_simulated(tab, simulated)
    width, height = page.evaluate(
        "[document.scrollingElement.scrollWidth, document.scrollingElement.scrollHeight]"
    )
    assert width <= VIEWPORT["width"]  # the policies table wraps or scrolls inside its panel
    assert height <= 6000  # one DAG, 20 compared programs and 30 timeline rows, not 300 of each
    assert page.locator("#program-table tbody tr").count() == DRAWN
    assert page.locator(".dag-program").count() == 1
    duration = page.locator("#stat-duration")
    assert duration.get_attribute("data-clock") == "simulated"
    assert duration.locator(".label").text_content() == "simulated time"
    assert page.locator("#stat-wall").get_attribute("data-clock") == "wall"
    assert page.locator("#stat-programs b").text_content() == str(DRAWN)
    screenshot(page, "replay-300")
    assert tab.errors == []


def test_the_selected_programs_dag_has_its_edges_and_real_states(tab, simulated):
    page = open_simulated(tab, simulated)
    _, _, traces = simulated
    pid = page.locator(".dag-program").get_attribute("data-program")
    trace = page.locator("#trace-select").input_value()
    (start,) = [e for e in traces[trace] if e.kind == "program_start" and e.program_id == pid]
    edges = start.attrs["edges"]
    assert len(edges) >= 4
    dag = page.locator(f'.dag-program[data-program="{pid}"] svg.dag')
    drawn = dag.locator(".dag-edge").evaluate_all("es => es.map(e => [e.dataset.from, e.dataset.to])")
    assert sorted(drawn) == sorted(edges)
    statuses = dag.locator("[data-node]").evaluate_all("ns => ns.map(n => n.dataset.status)")
    assert len(statuses) == len(start.attrs["nodes"]) and set(statuses) == {"ok"}  # every node ran and ended
    columns = dag.locator("[data-node]").evaluate_all(
        "ns => new Set(ns.map(n => n.getAttribute('transform'))).size"
    )
    assert columns == len(statuses)  # one box per node, none stacked on another
    assert tab.errors == []


def test_rows_are_named_by_their_task_with_the_full_id_on_hover(tab, simulated):
    page = open_simulated(tab, simulated)
    rows = page.locator("#program-table tbody tr")
    long_task = TASKS[1]  # 43 characters
    row = rows.filter(has_text=long_task).first
    pid = row.get_attribute("data-program")
    assert row.get_attribute("title") == pid and pid.startswith(f"{STAMP}/{long_task}/")
    name = row.locator("td.program-name").text_content()
    assert name == f"{long_task}~{pid.rsplit('~', 1)[1]}"  # the task, its draw number; no date, no cut
    names = page.locator("td.program-name").evaluate_all("cs => cs.map(c => c.textContent)")
    assert all(not n.endswith("…") or len(n) >= 40 for n in names)
    assert not any(n.startswith(STAMP) for n in names)
    captions = page.locator("#compare-gantt .cmp-name").evaluate_all(
        "cs => cs.map(c => [c.textContent, c.title])"
    )
    assert captions and all(text == json_label(title) for text, title in captions)
    labels = page.locator("#timeline .row-label").evaluate_all(
        "ls => ls.map(l => [l.firstChild.textContent, l.querySelector('title')?.textContent])"
    )  # the timeline's rows: the same task names, cut at 40 characters at the soonest, the id on hover
    programs = [(text, title) for text, title in labels if title and title.startswith(STAMP)]
    assert programs and all(text.removesuffix("…") in json_label(title) for text, title in programs)
    assert all(len(text) >= 40 or not text.endswith("…") for text, _ in programs)
    assert tab.errors == []


def json_label(pid: str) -> str:
    """The label the page gives a drawn program of this workload: its task and draw number."""
    task = pid.split("/")[1]
    return f"{task}~{pid.rsplit('~', 1)[1]}"


def test_the_search_finds_one_program_and_shows_its_dag(tab, simulated):
    page = open_simulated(tab, simulated)
    target = row_ids(page)[137]
    label = json_label(target)
    page.locator("#program-search").fill(label)
    page.wait_for_function(
        "document.querySelectorAll('#program-table tbody tr').length === 1", timeout=TIMEOUT_MS
    )
    assert row_ids(page) == [target]
    assert page.locator("#program-count").text_content() == f"1 of {DRAWN}"
    assert page.locator(".dag-program").get_attribute("data-program") == target
    assert page.locator("#program-search").input_value() == label  # still typing in it after the redraw
    page.locator("#program-search").fill("no-such-task")
    page.wait_for_function(
        "document.querySelectorAll('#program-table tbody tr').length === 0", timeout=TIMEOUT_MS
    )
    assert tab.errors == []


def test_sorting_by_jct_and_by_the_difference_orders_the_rows(tab, simulated):
    page = open_simulated(tab, simulated)
    _, _, traces = simulated
    a, b = jcts(traces["vllm"]), jcts(traces["tether"])
    arrival = row_ids(page)
    page.locator("#program-sort").select_option("jct-a")
    page.wait_for_selector('#sort-order[data-desc="true"]', timeout=TIMEOUT_MS)
    by_a = row_ids(page)
    assert [a[p] for p in by_a] == sorted(a.values(), reverse=True)
    assert by_a == sorted(arrival, key=lambda p: (-a[p], arrival.index(p)))
    page.locator("#program-sort").select_option("diff")
    page.wait_for_function("document.querySelector('#program-sort').value === 'diff'", timeout=TIMEOUT_MS)
    by_diff = row_ids(page)
    assert by_diff == sorted(arrival, key=lambda p: (-(b[p] - a[p]), arrival.index(p)))
    page.locator("#sort-order").click()
    page.wait_for_selector('#sort-order[data-desc="false"]', timeout=TIMEOUT_MS)
    assert row_ids(page) == sorted(arrival, key=lambda p: (b[p] - a[p], arrival.index(p)))
    assert tab.errors == []


def test_a_real_engine_replay_shows_wall_time_and_its_table_fits(tab, ui, runs):
    tab.page.set_viewport_size(VIEWPORT)
    open_run(tab, ui, runs.replay)
    page = tab.page
    duration = page.locator("#stat-duration")
    assert duration.get_attribute("data-clock") == "wall"
    assert duration.locator(".label").text_content() == "duration"
    assert page.locator("#stat-wall").count() == 0
    assert page.locator("#stat-programs b").text_content() == "3"  # three programs under two policies
    assert page.evaluate("document.scrollingElement.scrollWidth") <= VIEWPORT["width"]
    assert page.locator("#program-table tbody tr").count() == 3
    assert tab.errors == []
