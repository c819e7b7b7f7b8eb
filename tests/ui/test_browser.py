"""The page in a real headless Chromium over a real ``tether ui`` process: one bar per llm_turn and
tool_call, node details with token counts, the replay comparison, live updates, the error banner, the
snapshot from file:// and a screenshot under out/ui/. No console errors on any page that loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.ui.conftest import ARTIFACTS, REPO
from tests.ui.process import ui_process
from tests.ui.traces import counts, llm_turn, research_program, tool_call, write_agent_run
from tether.runtime.tracing import load_run

pytestmark = pytest.mark.slow  # headless Chromium (playwright) against a `tether ui` process

TIMEOUT_MS = 15_000


def open_run(tab, base: str, run_id: str) -> None:
    tab.page.goto(f"{base}/#/runs/{run_id}")
    tab.page.wait_for_function("document.body.dataset.state !== 'loading'", timeout=TIMEOUT_MS)


def bars(page) -> dict[str, int]:
    return {k: page.locator(f'[data-kind="{k}"]').count() for k in ("llm", "tool", "kv", "pin")}


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.is_file() and path.stat().st_size > 0
    return path


def test_run_list_shows_each_run(tab, ui, runs):
    tab.page.goto(ui + "/")
    tab.page.wait_for_selector("#runs")
    row = tab.page.locator(f'tr[data-run-id="{runs.agent}"]')
    assert row.locator("td").nth(3).text_content() == "2"
    assert "950 / 68" in row.text_content() and "58.5%" in row.text_content()
    assert tab.page.locator(f'tr[data-run-id="{runs.malformed}"]').get_by_text("malformed trace").is_visible()
    row.locator("a").click()
    tab.page.wait_for_selector(f'#run-view[data-run-id="{runs.agent}"]')
    assert tab.errors == []


def test_one_bar_per_llm_turn_and_tool_call(tab, ui, runs):
    open_run(tab, ui, runs.agent)
    n = counts(load_run(runs.root, runs.agent).traces["main"])
    assert bars(tab.page) == {"llm": n["llm_turn"], "tool": n["tool_call"], "kv": 2, "pin": 2}
    phases = tab.page.locator('[data-kind="llm"] [data-phase]')
    assert phases.count() == 3 * n["llm_turn"]  # queued, prefill and decode from the engine's events
    assert tab.page.locator('.dag-program [data-node="followup"]').count() == 1  # added by node_added
    assert (
        tab.page.locator('[data-program="research-b"][data-node="summarize"]').get_attribute("data-status")
        == "error"
    )
    assert tab.page.locator("#kv-chart [data-series]").count() == 3
    assert tab.page.locator("#queue-chart [data-series]").count() == 2
    assert tab.page.locator("#stat-input b").text_content() == "950"
    assert tab.page.locator("#export-jsonl").get_attribute("href").endswith("export?format=jsonl")
    screenshot(tab.page, "run")
    assert tab.errors == []


def test_clicking_a_node_shows_its_token_counts(tab, ui, runs):
    open_run(tab, ui, runs.agent)
    tab.page.locator('[data-program="research-a"][data-node="summarize"]').click()
    details = tab.page.locator("#details")
    tokens = details.locator("table.tokens")
    assert tokens.locator('[data-attr="gen_ai.usage.input_tokens"] td').text_content() == "300"
    assert tokens.locator('[data-attr="gen_ai.usage.output_tokens"] td').text_content() == "48"
    assert tokens.locator('[data-attr="gen_ai.usage.cache_read.input_tokens"] td').text_content() == "128"
    assert (
        "Summarize the sources." in details.text_content() and "output of summarize" in details.text_content()
    )
    tab.page.locator('[data-kind="tool"][data-node="length"]').click()
    assert "word_count" in details.locator('[data-attr="gen_ai.tool.name"]').text_content()
    assert tab.errors == []


def test_replay_compares_policies(tab, ui, runs):
    open_run(tab, ui, runs.replay)
    page = tab.page
    assert page.locator("#jct-cdf [data-series]").count() == 2
    assert (page.locator("#policy-a").input_value(), page.locator("#policy-b").input_value()) == (
        "vllm",
        "tether",
    )
    assert (
        page.locator('#compare-gantt [data-cmp="llm"]').count() == 12
    )  # 3 programs x 2 requests x 2 policies
    assert page.locator('#compare-gantt [data-cmp="pin"]').count() == 3  # tether pins across each tool call
    assert page.locator("#results tbody tr").count() == 2
    assert bars(page)["llm"] == 6  # the trace shown below: engine requests (no llm_turn in a replay)
    page.locator("#trace-select").select_option("tether")
    page.wait_for_function("document.querySelectorAll('#timeline [data-kind=pin]').length === 3")
    screenshot(page, "replay")
    assert tab.errors == []


def test_live_updates_add_bars(tab, ui, runs):
    rec = write_agent_run(runs.root, running=True, events=research_program("live", 0.0)[:4])
    open_run(tab, ui, rec.run_id)
    page = tab.page
    page.wait_for_function("document.body.dataset.live === 'on'", timeout=TIMEOUT_MS)
    assert bars(page)["tool"] == 1 and bars(page)["llm"] == 0
    writer = rec.trace()
    writer.emit(tool_call("live", "read_first", "fetch", 0.06, 0.3))
    writer.emit(llm_turn("live", "summarize", "live-r1", 0.31, 1.2, (300, 48, 128)))
    page.wait_for_function("document.querySelectorAll('[data-kind=llm]').length === 1", timeout=TIMEOUT_MS)
    assert bars(page)["tool"] == 2
    rec.end("ok")
    page.wait_for_function("document.body.dataset.live === 'off'", timeout=TIMEOUT_MS)
    page.wait_for_selector('#run-status [data-status="ok"]', timeout=TIMEOUT_MS)
    assert tab.errors == []


def test_the_timeline_legend_names_the_prefetched_marker_in_its_colour(tab, ui, runs):
    open_run(tab, ui, runs.agent)
    item = tab.page.locator('.legend-item[data-legend="prefetched"]')
    assert item.text_content() == "prefetched"
    colour = item.locator("i").evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(8, 145, 178)"  # the marker's fill, #0891b2
    assert tab.errors == []


def test_an_instant_events_details_show_one_time(tab, ui, runs):
    open_run(tab, ui, runs.agent)
    page = tab.page
    page.locator("[data-kind=kv]").first.click()
    timing = page.locator("#details table.timing").first.text_content()
    assert "at" in timing and "(instant)" not in timing and "end" not in timing
    assert tab.errors == []


def test_a_run_whose_process_died_shows_stopped_not_live(tab, ui, runs):
    record_and_die = (
        "import os, sys\n"
        "from tether.runtime.tracing.store import RunRecorder\n"
        "RunRecorder('serve', 'serve', trace_dir=sys.argv[1], run_id='died-mid-run')\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", record_and_die, str(runs.root)], check=True, cwd=REPO)
    open_run(tab, ui, "died-mid-run")
    tab.page.wait_for_selector('#run-status [data-status="stopped"]', timeout=TIMEOUT_MS)
    assert tab.page.evaluate("document.body.dataset.live") != "on"
    assert tab.page.locator("#live-indicator").count() == 0
    assert tab.errors == []


def test_a_malformed_trace_shows_the_error_banner(tab, ui, runs):
    open_run(tab, ui, runs.malformed)
    banner = tab.page.locator("#error-banner")
    assert banner.is_visible() and "events.jsonl:3" in banner.text_content()
    assert tab.page.locator("h1").text_content() == runs.malformed
    assert all("422" in e for e in tab.errors)  # the browser logs the failed request, nothing else


def test_a_cut_last_line_is_left_out_with_a_notice(tab, ui, runs):
    open_run(tab, ui, runs.truncated)
    assert bars(tab.page)["tool"] == 1
    assert tab.page.locator("#notice").is_visible() and not tab.page.locator("#error-banner").is_visible()
    assert tab.errors == []


def test_an_unknown_run_shows_the_error_banner(tab, ui):
    open_run(tab, ui, "no-such-run")
    assert "no run 'no-such-run'" in tab.page.locator("#error-banner").text_content()


def test_snapshot_opens_from_file_with_the_same_bars(tab, ui, runs, tmp_path):
    out = tmp_path / "snapshot.html"
    done = subprocess.run(
        [sys.executable, "-m", "tether.cli", "ui", "--trace-dir", str(runs.root),
         "--snapshot", runs.agent, "-o", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    open_run(tab, ui, runs.agent)
    served = bars(tab.page)
    requests: list[str] = []
    tab.page.on("request", lambda r: requests.append(r.url))
    tab.page.goto(out.as_uri())
    tab.page.wait_for_function("document.body.dataset.state === 'ready'", timeout=TIMEOUT_MS)
    assert bars(tab.page) == served
    tab.page.locator('[data-program="research-a"][data-node="summarize"]').click()
    assert "gen_ai.usage.input_tokens" in tab.page.locator("#details").text_content()
    assert all(u.startswith(("file:", "data:", "blob:")) for u in requests), requests
    assert tab.page.locator("#export-jsonl").get_attribute("href").startswith("blob:")
    for fmt, suffix in (("chrome", ".chrome.json"), ("otlp-json", ".otlp.json")):
        link = tab.page.locator(f"#export-{fmt}")
        assert link.get_attribute("href").startswith("blob:")
        assert link.get_attribute("download") == runs.agent + suffix
    assert tab.errors == []


def test_a_run_recorded_by_tether_run(tab, recorded):
    root, run_id = recorded
    events = load_run(root, run_id).traces["main"]
    n = counts(events)
    assert n.get("llm_turn", 0) >= 1 and n.get("tool_call", 0) >= 4
    with ui_process(root, cwd=REPO) as base:
        open_run(tab, base, run_id)
        page = tab.page
        assert page.locator("#error-banner").is_hidden()
        assert (bars(page)["llm"], bars(page)["tool"]) == (n["llm_turn"], n["tool_call"])
        turn = next(e for e in events if e.kind == "llm_turn")
        page.locator(f'.dag-program [data-node="{turn.node_id}"]').first.click()
        row = page.locator('#details table.tokens [data-attr="gen_ai.usage.input_tokens"] td')
        assert row.text_content() == str(turn.attrs["gen_ai.usage.input_tokens"])
        screenshot(page, "recorded-run")
    assert tab.errors == []
