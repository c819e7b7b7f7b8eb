"""``tether ui --snapshot``: one HTML file with the page's assets and the run inlined, safe to embed."""

from __future__ import annotations

import json
import re

from tests.ui.traces import llm_turn, write_agent_run
from tether.runtime.ui.runs import run_view
from tether.runtime.ui.snapshot import STATIC, snapshot_html


def inlined_payload(html: str) -> dict:
    match = re.search(r"<script>window\.TETHER_SNAPSHOT = (.*?);</script>", html, re.S)
    assert match is not None
    return json.loads(match.group(1))


def test_the_snapshot_inlines_every_asset_and_the_run(runs):
    payload = run_view(runs.root, runs.agent)
    html = snapshot_html(payload)
    assert 'src="static/' not in html and 'href="static/' not in html
    scripts = len(re.findall(r'<script src="static/', (STATIC / "index.html").read_text()))
    assert scripts >= 9 and html.count("<script>") == 1 + scripts  # the data and every script
    inlined = inlined_payload(html)
    assert inlined["traces"] == json.loads(json.dumps(payload["traces"]))
    assert inlined["snapshot"]["created"] > 0


def test_text_that_closes_a_script_stays_inside_the_data(tmp_path):
    evil = "</script><script>alert(1)</script><!-- \u2028"
    rec = write_agent_run(
        tmp_path, events=[llm_turn("p", "n", "r", 0.0, 1.0, (1, 1, 0), **{"gen_ai.output.text": evil})]
    )
    html = snapshot_html(run_view(tmp_path, rec.run_id))
    assert evil not in html and "alert(1)</script>" not in html
    assert inlined_payload(html)["traces"]["main"][0]["attrs"]["gen_ai.output.text"] == evil


def test_the_snapshot_inlines_the_chrome_and_otlp_exports(runs, tmp_path):
    from tether.runtime.tracing.store import load_run
    from tether.runtime.ui.exports import export_text
    from tether.runtime.ui.snapshot import write_snapshot

    out = write_snapshot(runs.root, runs.agent, tmp_path / "s.html")
    exports = inlined_payload(out.read_text())["snapshot"]["exports"]
    run = load_run(runs.root, runs.agent)
    assert exports == {fmt: export_text(run, fmt) for fmt in ("chrome", "otlp-json")}
    assert json.loads(exports["chrome"])["traceEvents"] and json.loads(exports["otlp-json"])["resourceSpans"]
