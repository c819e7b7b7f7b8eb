"""``tether replay``: ``--endpoint`` against a fake server (tests/replay/test_replay_http.py's), and
``--simulate`` with drawn programs, seeds, hints and a CPU tier, each recorded in the JSON."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.replay.test_replay import PROGRAMS
from tests.replay.test_replay_http import BASE, FakeServer
from tests.replay.test_replay_http import PROGRAMS as HTTP_PROGRAMS
from tether.cli import main
from tether.runtime.replay import http as replay_http
from tether.runtime.replay.http import make_client
from tether.runtime.replay.workload import TraceProgram


def write_workload(path: Path, programs: list[TraceProgram]) -> Path:
    lines = (
        json.dumps({"program_id": p.program_id, "turns": [t.__dict__ for t in p.turns]}) for p in programs
    )
    path.write_text("\n".join(lines))
    return path


def test_endpoint_replays_over_http_and_ignores_the_policies(tmp_path, monkeypatch, capsys):
    workload = write_workload(tmp_path / "t.jsonl", HTTP_PROGRAMS)
    server = FakeServer()
    monkeypatch.setattr(
        replay_http,
        "make_client",
        lambda api_key=None, **kw: make_client(api_key, transport=httpx.MockTransport(server)),
    )
    args = ["replay", "--workload", str(workload), "--endpoint", BASE + "/", "--concurrency", "2", "--quiet"]
    assert main([*args, "--simulate"]) == 2
    assert "--simulate cannot be used with --endpoint" in capsys.readouterr().err
    out = tmp_path / "r.json"
    assert main([*args, "--policies", "tether", "--served-model", "s", "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert "ignored: --policies" in captured.err and captured.out.splitlines()[2].startswith("http ")
    doc = json.loads(out.read_text())
    assert doc["settings"]["endpoint"] == BASE + "/" and doc["settings"]["served_model"] == "s"
    assert doc["results"][0]["prompt_tokens"] == 314 and doc["results"][0]["cache_hit_tokens"] == 174
    assert server.bodies["swe/a#1"][0]["model"] == "s"


def test_simulate_records_hints_draw_seeds_and_tier(tmp_path, capsys):
    workload = write_workload(tmp_path / "w.jsonl", PROGRAMS)
    out = tmp_path / "r.json"
    args = ["replay", "--workload", str(workload), "--simulate", "--kv-blocks", "32", "--cpu-kv-blocks", "1x"]
    args += ["--draw", "10", "--seeds", "0,1", "--rate", "4", "--quiet", "--policies", "lmcache,tether"]
    assert main([*args, "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    st = doc["settings"]
    assert (st["hints"], st["draw"], st["seeds"], st["window"]) == ("online", 10, [0, 1], 0.1)
    assert (st["cpu_kv_blocks"], st["cpu_tier_x"]) == (32, 1.0)
    assert [r["label"] for r in doc["summary"]] == ["lmcache", "tether"]
    printed = capsys.readouterr().out
    assert "mean [min, max]" in printed and "leave out the first and last 10%" in printed
    assert main([*args, "--hints", "oracle", "--seeds", "0"]) == 0
    assert "tether+true-turns" in capsys.readouterr().out
    assert main([*args[:-1], "tether:order=sjf"]) == 2
    assert "order 'sjf'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "want"),
    [
        (
            {"simulate": True, "rate": 0.1},
            ([0, 1, 2, 3, 4], 300, 0),
        ),  # a simulated steady state: 5 draws of 300
        ({"simulate": True, "rate": 0.1, "seed": 7}, ([7], 300, 7)),
        ({"simulate": True, "rate": 0.1, "seeds": "3,4", "draw": 0}, ([3, 4], None, 3)),  # 0: as recorded
        ({"simulate": True, "concurrency": 2}, ([0], None, 0)),  # closed loop: no draw
        ({"simulate": True, "rate": 0.1, "trace": True}, ([0], None, 0)),  # a trace is one run
        ({"rate": 0.1}, ([0], None, 0)),  # the real engine
    ],
)
def test_sampling_defaults(flags, want):
    from argparse import Namespace

    from tether.cli.replay import _sampling

    args = Namespace(**{"simulate": False, "rate": None, "concurrency": None, "trace": False, "draw": None,
                        "seeds": None, "seed": None, **flags})  # fmt: skip
    seeds = _sampling(args)
    assert (seeds, args.draw, args.seed) == want


def test_replicas_simulate_a_cluster_behind_each_router(tmp_path, capsys):
    workload = write_workload(tmp_path / "t.jsonl", PROGRAMS)
    args = ["replay", "--workload", str(workload), "--kv-blocks", "64", "--rate", "2", "--policies", "tether"]
    args += ["--seeds", "0", "--draw", "12"]
    assert main([*args, "--replicas", "2"]) == 2
    assert "--replicas runs a simulated cluster: add --simulate" in capsys.readouterr().err
    assert main([*args, "--simulate", "--replicas", "2", "--router", "ring"]) == 2
    assert "unknown router 'ring'" in capsys.readouterr().err
    out = tmp_path / "c.json"
    code = main(
        [*args, "--simulate", "--replicas", "2", "--router", "program,pow2", "--quiet", "--json", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "tether@program" in printed and "pin hits" in printed
    rows = json.loads(out.read_text())["results"]
    assert [(r["label"], r["replicas"]) for r in rows] == [("tether@program", 2), ("tether@pow2", 2)]
    assert all(r["kv_leaked_blocks"] == 0 and r["programs"] == 12 for r in rows)


def test_a_prompt_over_the_context_is_one_line_and_a_failed_run(tmp_path, capsys):
    from tests.replay.test_replay import program
    from tether.runtime.tracing.store import run_meta

    too_long = program("agent/huge", [(0, 4, "bash", 0.1), (20, 4, None, None)], first_prompt=40_000)
    workload = write_workload(tmp_path / "w.jsonl", [PROGRAMS[0], too_long])
    runs = tmp_path / "runs"
    args = ["replay", "--workload", str(workload), "--simulate", "--kv-blocks", "256", "--rate", "4"]
    assert main([*args, "--draw", "0", "--quiet", "--trace", "--trace-dir", str(runs)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tether replay: program 'agent/huge' turn 0: prompt")
    (run,) = list(runs.iterdir())
    assert run_meta(runs, run.name)["status"] == "failed"


def test_a_simulated_trace_has_no_negative_time(tmp_path):
    """Every event of a simulated replay's trace begins before it is emitted, and the Chrome export has no
    negative duration (one clock: the simulation's, offset to wall time once)."""
    workload = write_workload(tmp_path / "w.jsonl", PROGRAMS)
    runs = tmp_path / "runs"
    args = ["replay", "--workload", str(workload), "--simulate", "--kv-blocks", "64", "--cpu-kv-blocks", "1x"]
    args += ["--draw", "12", "--seed", "0", "--rate", "2", "--quiet", "--policies", "continuum,tether"]
    assert main([*args, "--trace", "--trace-dir", str(runs)]) == 0
    (run,) = list(runs.iterdir())
    for trace in ("continuum", "tether"):
        events = [json.loads(line) for line in (run / f"{trace}.jsonl").read_text().splitlines()]
        assert events and all(e["start"] is None or e["start"] <= e["ts"] + 1e-9 for e in events)
        assert all(
            (e["attrs"].get("ttft_s") or 0) >= 0 and (e["attrs"].get("queued_s") or 0) >= 0 for e in events
        )
        out = tmp_path / f"{trace}.chrome.json"
        assert (
            main(["trace", "export", run.name, "--trace", trace, "-o", str(out), "--trace-dir", str(runs)])
            == 0
        )
        doc = json.loads(out.read_text())
        spans = [e for e in doc["traceEvents"] if "dur" in e]
        assert spans and all(e["dur"] >= 0 for e in spans)
