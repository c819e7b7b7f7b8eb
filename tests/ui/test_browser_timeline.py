"""The timeline in a real headless Chromium (docs/tracing.md, "The UI"): wheel zoom around the cursor, drag to
pan and reset, with the counters on the same window; bars at least ``MIN_BAR_W`` px wide with their real
duration on hover; the model load's row; pinned bands from the KV events, matching the counters' pinned
blocks across a park and a prefetch; open-ended bars for unfinished requests; and a page that fits from 900 to
2,560 px wide."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.ui.test_browser import TIMEOUT_MS, open_run, screenshot
from tests.ui.traces import long_run_events, parked_run_events, write_events_run

pytestmark = pytest.mark.slow  # headless Chromium (playwright) against a `tether ui` process

MIN_BAR_W = 3  # gantt.js T.MIN_BAR_W
LABEL_W, PLOT_PAD = 240, 14  # gantt.js: the label column and the pad right of the plot

READY_JS = "id => document.body.dataset.state === 'ready' && document.getElementById('run-view')?.dataset.runId === id"
WINDOW_JS = "s => s.dataset.lo + ',' + s.dataset.hi"

# The page x of each edge of a counter series where it leaves 0 (up) and comes back to it (down), read from its
# step path "M x,y H x V y ...", inside the plot only (the clip hides what lies outside).
EDGES_JS = """([chart, name]) => {
  const svg = document.querySelector(`#${chart}`);
  const path = svg.querySelector(`[data-series="${name}"]`);
  const nums = path.getAttribute("d").match(/[MHV]|-?[\\d.e+-]+/g);
  const points = [];
  let x = null, y = null, cmd = null;
  for (const t of nums) {
    if ("MHV".includes(t)) { cmd = t; continue; }
    if (cmd === "M") { if (x === null) x = +t; else { y = +t; points.push([x, y]); } }
    else if (cmd === "H") x = +t;
    else if (cmd === "V") { y = +t; points.push([x, y]); }
  }
  const zero = Math.max(...points.map((p) => p[1]));
  const left = svg.getBoundingClientRect().left, plotW = +svg.getAttribute("width") - 240 - 14;
  const edges = [];
  for (let i = 1; i < points.length; i++) {
    const [px, py] = points[i], was = points[i - 1][1];
    const up = was === zero && py < zero, down = was < zero && py === zero;
    if ((up || down) && px >= 240 && px <= 240 + plotW) edges.push([up ? "up" : "down", left + px]);
  }
  return edges;
}"""


@dataclass(frozen=True)
class TimelineRuns:
    long: str
    parked: str


@pytest.fixture(scope="module")
def timeline(runs) -> TimelineRuns:
    return TimelineRuns(
        write_events_run(runs.root, "long", long_run_events()),
        write_events_run(runs.root, "parked", parked_run_events()),
    )


def window(page, selector: str = "#gantt svg") -> tuple[float, float]:
    lo, hi = page.locator(selector).evaluate("s => [s.dataset.lo, s.dataset.hi]")
    return float(lo), float(hi)


def plot_right(page) -> float:
    svg = page.locator("#gantt svg")
    return svg.bounding_box()["x"] + float(svg.get_attribute("width")) - PLOT_PAD


def test_wheel_zoom_shows_the_54_ms_pin_at_20_px_with_the_counters_on_the_same_window(tab, ui, timeline):
    open_run(tab, ui, timeline.long)
    page = tab.page
    pin = page.locator('#timeline [data-program="long"] [data-kind="pin"]')
    assert pin.count() == 1 and pin.bounding_box()["width"] < 3  # 54 ms of 230.8 s
    for _ in range(30):
        box = pin.bounding_box()
        if box["width"] >= 20:
            break
        shown = page.locator("#gantt svg").evaluate(WINDOW_JS)
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, -300)
        page.wait_for_function(
            f"w => ({WINDOW_JS})(document.querySelector('#gantt svg')) !== w", arg=shown, timeout=TIMEOUT_MS
        )
    box = pin.bounding_box()
    assert box["width"] >= 20
    lo, hi = window(page)
    # the pin's seconds from the trace's start (the load's)
    assert lo <= 100.11 + 20.8 and hi >= 100.164 + 20.8
    assert window(page, "#kv-chart") == (lo, hi) and window(page, "#queue-chart") == (lo, hi)
    edges = page.evaluate(EDGES_JS, ["kv-chart", "blocks_pinned"])
    assert [kind for kind, _ in edges] == ["up", "down"]
    assert abs(edges[0][1] - box["x"]) <= 1 and abs(edges[1][1] - (box["x"] + box["width"])) <= 1
    assert "of 3 min 51 s" in page.locator("#zoom-window").text_content()

    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)  # a drag that starts on the pin's band pans; it does not select the band
    page.mouse.down()
    page.mouse.move(x - 200, y, steps=5)
    page.mouse.up()
    page.wait_for_function(f"+document.querySelector('#gantt svg').dataset.lo > {lo}", timeout=TIMEOUT_MS)
    panned = window(page)
    assert panned[1] - panned[0] == pytest.approx(hi - lo) and window(page, "#kv-chart") == panned
    assert page.locator("#details").get_attribute("data-key") is None
    page.locator('#timeline [data-kind="tool"][data-node="lookup"]').click()  # a click still selects
    assert page.locator("#details").get_attribute("data-key").startswith("span:main:tool_call:long:lookup")

    page.locator("#zoom-reset").click()
    page.wait_for_function("+document.querySelector('#gantt svg').dataset.lo === 0", timeout=TIMEOUT_MS)
    assert window(page) == (0.0, pytest.approx(230.8)) and page.locator("#zoom-reset").is_disabled()
    assert tab.errors == []


def test_a_2_ms_tool_bar_is_min_width_with_its_real_duration_on_hover(tab, ui, timeline):
    open_run(tab, ui, timeline.long)
    bar = tab.page.locator('#timeline [data-kind="tool"][data-node="lookup"]')
    assert bar.count() == 1
    width = float(bar.locator(".bar-base").get_attribute("width"))
    assert width == pytest.approx(MIN_BAR_W)  # its real width is 0.007 px
    assert "duration 2 ms" in bar.locator("title").text_content()
    assert tab.errors == []


def test_the_model_load_has_its_own_row_and_bar(tab, ui, timeline):
    open_run(tab, ui, timeline.long)
    page = tab.page
    row = page.locator('#timeline [data-program="_model_load"]')
    assert row.locator(".row-label").evaluate("t => t.firstChild.textContent") == "model load"
    bar = row.locator('[data-kind="model_load"]')
    assert bar.count() == 1
    title = bar.locator("title").text_content()
    assert "model load · smollm2 · cuda:0 · bfloat16 · compiled" in title and "duration 20.8 s" in title
    plot_w = float(page.locator("#gantt svg").get_attribute("width")) - LABEL_W - PLOT_PAD
    base = bar.locator(".bar-base")
    assert float(base.get_attribute("x")) == pytest.approx(LABEL_W)  # the trace starts with the load
    assert float(base.get_attribute("width")) == pytest.approx(20.8 / 230.8 * plot_w, abs=0.5)
    bar.click()
    assert page.locator("#details h2").text_content() == "model load · smollm2"
    screenshot(page, "timeline-long")
    assert tab.errors == []


def test_unfinished_requests_have_open_ended_bars(tab, ui, timeline):
    open_run(tab, ui, timeline.long)
    page = tab.page
    open_bars = page.locator('#timeline [data-kind="llm"][data-open="true"]')
    assert open_bars.evaluate_all("bs => bs.map((b) => b.dataset.request)") == ["long-r3", "srv-1"]
    right = plot_right(page)
    for i in range(2):
        bar = open_bars.nth(i)
        box = bar.locator(".bar-base").bounding_box()
        assert abs(box["x"] + box["width"] - right) <= 1  # to the trace's end
        assert bar.locator(".open-end").count() == 1 and "(unfinished)" in bar.locator("title").text_content()
    phases = open_bars.nth(0).locator("[data-phase]").evaluate_all("ps => ps.map((p) => p.dataset.phase)")
    assert phases == ["queued", "prefill", "decode"]
    assert open_bars.nth(1).locator("[data-phase]").evaluate_all("ps => ps.map((p) => p.dataset.phase)") == [
        "queued"
    ]
    assert page.locator('#timeline [data-kind="llm"]').count() == 4  # two turns and the two unfinished
    open_bars.nth(0).locator('[data-phase="decode"]').click()
    assert "(unfinished)" in page.locator("#details h2").text_content()
    assert tab.errors == []


def merged(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1] + 1e-9:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def pinned_intervals(events) -> list[tuple[float, float]]:
    """Where the recorded counters have blocks_pinned > 0, in seconds from the trace's first event."""
    t0 = min(e.start if e.start is not None else e.ts for e in events)
    steps = sorted((e.ts - t0, e.attrs["blocks_pinned"]) for e in events if e.kind == "engine_step")
    out, since = [], None
    for t, pinned in steps:
        if pinned > 0 and since is None:
            since = t
        elif pinned == 0 and since is not None:
            out.append((since, t))
            since = None
    return out


def test_pinned_bands_match_the_counters_across_park_and_prefetch(tab, ui, timeline):
    events = parked_run_events()
    expected = pinned_intervals(events)
    assert expected == [(9.5, 19.5), (29.5, 39.5), (49.5, 149.5)]  # the first event is at 0.5 s
    open_run(tab, ui, timeline.parked)
    page = tab.page
    bands = page.locator('#timeline [data-kind="pin"]')
    found = bands.evaluate_all(
        "bs => bs.map((b) => [b.closest('[data-program]').dataset.program, +b.dataset.start, +b.dataset.end])"
    )
    assert sorted(found) == [
        ["parked", pytest.approx(9.5), pytest.approx(19.5)],
        ["parked", pytest.approx(49.5), pytest.approx(149.5)],
        ["quiet", pytest.approx(29.5), pytest.approx(39.5)],  # cut by quiet-r2's admission (no pin_hit)
    ]
    assert merged([(s, e) for _, s, e in found]) == [
        (pytest.approx(a), pytest.approx(b)) for a, b in expected
    ]
    boxes = bands.evaluate_all("bs => bs.map((b) => b.getBoundingClientRect()).map((r) => [r.left, r.right])")
    edges = page.evaluate(EDGES_JS, ["kv-chart", "blocks_pinned"])
    assert [kind for kind, _ in edges] == ["up", "down"] * 3
    pixels = merged([(a, b) for a, b in boxes])
    for (a, b), up, down in zip(pixels, edges[::2], edges[1::2], strict=True):
        assert abs(a - up[1]) <= 1 and abs(b - down[1]) <= 1
    titles = bands.evaluate_all("bs => bs.map((b) => b.textContent)")
    assert any("(prefetched) → pin_expired" in t for t in titles)
    assert tab.errors == []


def assert_fits(page, width: int) -> None:
    """No horizontal page overflow; the details column beside the main one; the panels, the timeline and the
    counters inside the main column."""
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    main = page.locator(".run-main").bounding_box()
    details = page.locator("#details").bounding_box()
    assert details["x"] >= main["x"] + main["width"]  # side by side, no overlap
    assert details["x"] + details["width"] <= width
    for panel in ("#dags", "#timeline", "#counters"):
        box = page.locator(panel).bounding_box()
        assert box["x"] + box["width"] <= main["x"] + main["width"] + 0.5, panel
    for panel, svg in (
        ("#timeline", "#gantt svg"),
        ("#counters", "#kv-chart"),
        ("#counters", "#queue-chart"),
    ):
        outer, inner = page.locator(panel).bounding_box(), page.locator(svg).bounding_box()
        assert inner["x"] + inner["width"] <= outer["x"] + outer["width"], (panel, svg)
    fits = (
        "[...document.querySelectorAll('#gantt, .counters-box')].every((b) => b.scrollWidth <= b.clientWidth)"
    )
    assert page.evaluate(fits)  # nothing scrolls inside the panels either


@pytest.mark.parametrize("width", [900, 1600, 2560])
def test_the_run_page_fits_the_window(browser, ui, runs, timeline, width):
    context = browser.new_context(viewport={"width": width, "height": 1000})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        for run_id in (runs.agent, timeline.long):
            page.goto(f"{ui}/#/runs/{run_id}")
            page.wait_for_function(READY_JS, arg=run_id, timeout=TIMEOUT_MS)
            assert_fits(page, width)
        screenshot(page, f"timeline-{width}")
        assert errors == []
    finally:
        context.close()


def record_engine_run(root) -> tuple[str, list]:
    """A real recording: the tiny engine under ``tether``, three programs whose pins end three ways (a hit, an
    admission that matches none of the pin, the program ended while pinned), every event written to a run."""
    import time

    from tether.runtime.engine.builder import build_engine
    from tether.runtime.engine.config import EngineConfig
    from tether.runtime.engine.sampling_params import SamplingParams
    from tether.runtime.engine.sequence import ProgramHints
    from tether.runtime.tracing import MemoryTraceSink, RunRecorder

    engine = build_engine(EngineConfig(model="tiny", num_kv_blocks=64, policy="tether"))
    sink = MemoryTraceSink()
    engine.trace_to(sink)
    params = SamplingParams(temperature=0.0, max_tokens=4, ignore_eos=True)

    def turn(rid: str, prompt: list[int], hints: ProgramHints) -> None:
        engine.add_request(prompt, params, request_id=rid, hints=hints)
        while engine.has_unfinished():
            engine.step()
        time.sleep(0.3)  # a tool's pause, long enough to see at any width

    turn("hit#0", list(range(1, 41)), ProgramHints("hit", 0, next_tool="t"))
    turn("cold#0", list(range(50, 90)), ProgramHints("cold", 0, next_tool="t"))
    turn("ended#0", list(range(100, 140)), ProgramHints("ended", 0, next_tool="t"))
    turn("hit#1", list(range(1, 41)) + [7] * 8, ProgramHints("hit", 1, last_turn=True))
    turn("cold#1", list(range(200, 240)), ProgramHints("cold", 1, last_turn=True))
    engine.end_program("ended")
    engine.add_request([1, 2, 3], params, request_id="after")  # a step after the last release reads the counters
    while engine.has_unfinished():
        engine.step()
    engine.check_integrity()
    rec = RunRecorder("serve", "pins", trace_dir=root, meta={"command": "tether serve --model tiny"})
    writer = rec.trace()
    for e in sink.events:
        writer.emit(e)
    rec.end("ok")
    return rec.run_id, sink.events


def test_pinned_bands_of_a_real_recording_match_its_counters(tab, ui, runs):
    run_id, events = record_engine_run(runs.root)
    actions = [e.attrs["action"] for e in events if e.kind == "kv"]
    assert sorted(actions) == sorted(["pin_created"] * 3 + ["pin_hit", "unpinned", "unpinned"])
    open_run(tab, ui, run_id)
    found = tab.page.locator('#timeline [data-kind="pin"]').evaluate_all(
        "bs => bs.map((b) => [b.closest('[data-program]').dataset.program, +b.dataset.start, +b.dataset.end])"
    )
    assert sorted(p for p, _, _ in found) == ["cold", "ended", "hit"]
    step_s = max(e.ts - e.start for e in events if e.kind == "engine_step") + 0.01
    bands = merged([(s, e) for _, s, e in found])
    counters = pinned_intervals(events)
    assert len(bands) == len(counters) >= 1
    for (a, b), (c, d) in zip(bands, counters, strict=True):  # the counter is read at the end of each step
        assert a <= c <= a + step_s and b <= d <= b + step_s, (bands, counters)
    assert tab.errors == []
