"""``model_load`` (docs/tracing.md, "Engine events"): an engine that loads its model records how long it took, and
the run recorded around it (the ``tether serve`` / ``tether run`` path: ``Deployment.record`` and
``start_local_engine``, in either order) gets the span; the Chrome and OTLP exports carry it, with no negative
duration anywhere."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.ui.traces import BASE, long_run_events, write_events_run
from tether.runtime.deployment import Deployment
from tether.runtime.engine.config import EngineConfig
from tether.runtime.tracing import ENGINE_PROGRAM, load_run
from tether.runtime.tracing.export_chrome import to_chrome
from tether.runtime.tracing.export_otlp import to_otlp


@pytest.mark.parametrize("engine_first", [True, False])
async def test_a_recorded_run_has_its_engines_model_load(tmp_path: Path, engine_first: bool) -> None:
    before = time.time()
    deployment = Deployment()
    config = EngineConfig(model="tiny", num_kv_blocks=16, enforce_eager=True)
    if engine_first:  # tether serve: the engine loads, then the run is recorded
        await deployment.start_local_engine(config)
        recorder = await deployment.record("serve", "serve", trace_dir=tmp_path)
    else:  # tether run
        recorder = await deployment.record("run", "flow", trace_dir=tmp_path)
        await deployment.start_local_engine(config)
    await deployment.close()
    events = load_run(tmp_path, recorder.run_id).traces["main"]
    (load,) = [e for e in events if e.kind == "model_load"]
    assert (load.program_id, load.node_id) == (ENGINE_PROGRAM, None)
    assert before <= load.start < load.ts <= time.time()
    attrs = load.attrs
    assert (attrs["model"], attrs["device"], attrs["dtype"], attrs["compiled"]) == (
        "tiny",
        "cpu",
        "float32",
        False,
    )
    assert attrs["duration_s"] == pytest.approx(load.ts - load.start) and attrs["compile_s"] == 0.0


def test_the_exports_carry_the_model_load_and_no_negative_duration(tmp_path: Path) -> None:
    run = load_run(tmp_path, write_events_run(tmp_path, "long", long_run_events()))
    chrome = to_chrome(run)["traceEvents"]
    assert all(e["dur"] >= 0 for e in chrome if e["ph"] == "X")
    (load,) = [e for e in chrome if e.get("name") == "load smollm2"]
    assert (load["ph"], load["ts"], load["dur"], load["args"]["device"]) == ("X", 0, 20_800_000, "cuda:0")
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in chrome if e.get("name") == "thread_name"}
    processes = {e["pid"]: e["args"]["name"] for e in chrome if e.get("name") == "process_name"}
    assert (processes[load["pid"]], names[(load["pid"], load["tid"])]) == ("engine", "load")

    spans = [s for rs in to_otlp(run)["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert all(int(s["endTimeUnixNano"]) >= int(s["startTimeUnixNano"]) for s in spans)
    (span,) = [s for s in spans if s["name"] == "model_load smollm2"]
    start = round((BASE - 20.8) * 1e6) * 1000
    assert (int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])) == (start, round(BASE * 1e6) * 1000)
    parent = next(s for s in spans if s["spanId"] == span["parentSpanId"])
    assert parent["name"] == "engine" and int(parent["startTimeUnixNano"]) <= start
    assert span["status"] == {"code": 1}
