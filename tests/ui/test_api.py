"""The UI's JSON API in process (``create_ui_app`` under Starlette's test client): summaries, one run's
payload, errors, exports and the live stream."""

from __future__ import annotations

import json
import threading
import time

import pytest
from fastapi.testclient import TestClient

from tests.ui.traces import BASE, ev, llm_turn, tool_call, write_agent_run
from tether.runtime.tracing import load_run
from tether.runtime.ui import create_ui_app


@pytest.fixture(scope="module")
def client(runs) -> TestClient:
    return TestClient(create_ui_app(runs.root, poll_s=0.05))


def test_runs_lists_each_run_with_its_summary(client, runs):
    rows = {r["run_id"]: r for r in client.get("/api/runs").json()["runs"]}
    agent = rows[runs.agent]
    # research-a: (300, 48, 128) + (350, 20, 300); research-b's failed turn: (300, 0, 128)
    assert (agent["programs"], agent["input_tokens"], agent["output_tokens"]) == (2, 950, 68)
    assert agent["cache_read_tokens"] == 556 and agent["cache_hit_rate"] == pytest.approx(556 / 950)
    assert agent["duration_s"] == pytest.approx(2.1) and agent["status"] == "ok" and agent["kind"] == "run"
    replay = rows[runs.replay]  # llm_finished: 3 programs per policy, no program_start
    assert (replay["programs"], replay["input_tokens"], replay["output_tokens"]) == (6, 5100, 360)
    assert replay["traces"]["vllm"]["cache_hit_rate"] == 0
    assert replay["traces"]["tether"]["cache_hit_rate"] == pytest.approx(1200 / 2550)
    assert "events.jsonl:3" in rows[runs.malformed]["error"] and rows[runs.malformed]["programs"] is None
    assert rows[runs.truncated]["status"] == "failed" and rows[runs.truncated]["error"] is None


def test_a_run_is_its_meta_events_and_offsets(client, runs):
    body = client.get(f"/api/runs/{runs.agent}").json()
    run = load_run(runs.root, runs.agent)
    assert body["meta"]["kind"] == "run" and list(body["traces"]) == ["main"]
    assert body["traces"]["main"] == [e.to_dict() for e in run.traces["main"]]
    assert body["offsets"] == {"main": (runs.root / runs.agent / "events.jsonl").stat().st_size}
    assert body["truncated"] == []
    cut = client.get(f"/api/runs/{runs.truncated}").json()
    assert cut["truncated"] == ["main"] and len(cut["traces"]["main"]) == 4


def test_errors_are_json(client, runs):
    missing = client.get("/api/runs/no-such-run")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    bad = client.get(f"/api/runs/{runs.malformed}")
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert error["type"] == "trace_format" and error["line"] == 3 and error["path"].endswith("events.jsonl")
    assert client.get(f"/api/runs/{runs.agent}/live?offsets=[1]").status_code == 400
    assert client.get("/api/nothing").json()["error"]["type"] == "not_found"


def test_export(client, runs):
    jsonl = client.get(f"/api/runs/{runs.agent}/export?format=jsonl")
    assert jsonl.status_code == 200
    assert f'filename="{runs.agent}.jsonl"' in jsonl.headers["content-disposition"]
    assert len(jsonl.text.splitlines()) == len(load_run(runs.root, runs.agent).traces["main"])
    chrome = client.get(f"/api/runs/{runs.agent}/export?format=chrome")
    assert chrome.status_code == 200 and chrome.json()  # the exporters' own tests check the content
    assert client.get(f"/api/runs/{runs.agent}/export?format=svg").status_code == 400
    one = client.get(f"/api/runs/{runs.replay}/export", params={"format": "otlp-json", "trace": "tether"})
    assert (
        one.status_code == 200
        and f'filename="{runs.replay}.tether.otlp.json"' in one.headers["content-disposition"]
    )
    assert client.get(f"/api/runs/{runs.replay}/export?format=jsonl&trace=nope").status_code == 400
    assert client.get(f"/api/runs/{runs.malformed}/export?format=jsonl").status_code == 422


def sse_events(response) -> list[tuple[str, dict]]:
    out, name = [], None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            out.append((name, json.loads(line[len("data: ") :])))
    return out


def test_live_of_a_finished_run_sends_what_follows_the_offsets_then_ends(client, runs):
    size = (runs.root / runs.agent / "events.jsonl").stat().st_size
    with client.stream(
        "GET", f"/api/runs/{runs.agent}/live", params={"offsets": json.dumps({"main": size})}
    ) as r:
        assert [name for name, _ in sse_events(r)] == ["run", "end"]
    with client.stream("GET", f"/api/runs/{runs.agent}/live") as r:
        received = sse_events(r)
    assert [name for name, _ in received] == ["run", "events", "end"]
    assert len(received[1][1]["events"]) == len(load_run(runs.root, runs.agent).traces["main"])


def test_live_follows_a_running_run_until_it_ends(client, tmp_path):
    rec = write_agent_run(tmp_path, running=True, events=[])
    app = TestClient(create_ui_app(tmp_path, poll_s=0.05))

    def record() -> None:
        time.sleep(0.2)
        writer = rec.trace()
        writer.emit(tool_call("p", "search", "search", 0.0, 0.1))
        time.sleep(0.2)
        writer.emit(llm_turn("p", "summarize", "r1", 0.1, 0.5, (10, 2, 0)))
        rec.update(traces={**rec.meta["traces"], "extra": "extra.jsonl"})
        (rec.dir / "extra.jsonl").write_text(
            json.dumps(ev("kv", "p", 0.6, action="parked", blocks=1).to_dict()) + "\n"
        )
        time.sleep(0.2)
        rec.end("ok")

    thread = threading.Thread(target=record)
    thread.start()
    offsets = json.dumps({"main": 0})
    with app.stream("GET", f"/api/runs/{rec.run_id}/live", params={"offsets": offsets}) as r:
        received = sse_events(r)
    thread.join()
    kinds = [e["kind"] for name, data in received if name == "events" for e in data["events"]]
    assert sorted(kinds) == ["kv", "llm_turn", "tool_call"]
    assert received[-1][0] == "end" and received[-1][1]["status"] == "ok"
    assert {data["trace"] for name, data in received if name == "events"} == {"main", "extra"}
    assert all(e["ts"] >= BASE for name, data in received if name == "events" for e in data["events"])
