"""ToolDurationStats: cold-start rule, validation, workload traces, snapshots, threads."""

from __future__ import annotations

import json
import math
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from tether.tools import (
    EmpiricalDistribution,
    ExponentialPrior,
    ToolCallRecord,
    ToolDurationStats,
    ToolStatsError,
    read_tool_calls,
)

WORKLOADS = Path(__file__).resolve().parents[2].parent / "shared" / "workloads"


def test_cold_start_switches_prior_global_tool_at_the_thresholds() -> None:
    stats = ToolDurationStats(min_samples=3, prior_mean_s=2.0)
    assert (stats.source("bash"), stats.source(None)) == ("prior", "prior")
    assert stats.model_for("bash") == ExponentialPrior(2.0)
    assert stats.mean("bash") == 2.0

    stats.observe("ls", 10.0)
    assert (stats.source("bash"), stats.source("ls"), stats.source(None)) == ("global", "global", "global")
    stats.observe("bash", 1.0)
    stats.observe("bash", 2.0)
    assert stats.source("bash") == "global"
    assert stats.model_for("bash").support() == (1.0, 2.0, 10.0)

    stats.observe("bash", 3.0)  # the third observation: min_samples reached
    assert stats.source("bash") == "tool"
    model = stats.model_for("bash")
    assert isinstance(model, EmpiricalDistribution)
    assert model.samples() == (1.0, 2.0, 3.0)
    assert (stats.mean("bash"), stats.quantile("bash", 0.5), stats.cdf("bash", 2.5)) == (2.0, 2.0, 2 / 3)
    assert (stats.source("ls"), stats.source(None), stats.source("never-seen")) == (
        "global",
        "global",
        "global",
    )
    assert stats.mean(None) == 4.0
    assert (stats.count("bash"), stats.count("ls"), stats.count("never-seen"), stats.count()) == (3, 1, 0, 4)
    assert stats.tools() == ("bash", "ls")
    stats.check_integrity()


def test_threshold_counts_every_observation_not_only_kept_ones() -> None:
    stats = ToolDurationStats(min_samples=4, max_samples=2)
    stats.observe_many([("t", 1.0), ("t", 2.0), ("t", 3.0)])
    assert stats.source("t") == "global"
    stats.observe("t", 4.0)
    assert stats.source("t") == "tool"
    assert stats.model_for("t").support() == (3.0, 4.0)
    assert stats.count("t") == 4


def test_model_for_is_a_snapshot() -> None:
    stats = ToolDurationStats(min_samples=1)
    stats.observe("bash", 1.0)
    model = stats.model_for("bash")
    stats.observe("bash", 5.0)
    assert model.support() == (1.0,)
    assert stats.model_for("bash").support() == (1.0, 5.0)


@pytest.mark.parametrize("seconds", [-1.0, math.nan, math.inf, -math.inf, "2", None])
def test_bad_observation_names_the_tool_and_changes_nothing(seconds: object) -> None:
    stats = ToolDurationStats()
    with pytest.raises(ToolStatsError, match="'pytest'") as info:
        stats.observe("pytest", seconds)  # type: ignore[arg-type]
    assert info.value.tool == "pytest"
    assert repr(seconds) in str(info.value)
    assert (stats.count(), stats.tools()) == (0, ())


@pytest.mark.parametrize("tool", ["", None, 3])
def test_tool_name_must_be_a_non_empty_string(tool: object) -> None:
    with pytest.raises(ToolStatsError, match="non-empty string"):
        ToolDurationStats().observe(tool, 1.0)  # type: ignore[arg-type]


def test_observe_many_is_all_or_nothing() -> None:
    stats = ToolDurationStats()
    with pytest.raises(ToolStatsError, match="'grep'") as info:
        stats.observe_many([("bash", 1.0), ("grep", -2.0)])
    assert info.value.tool == "grep"
    with pytest.raises(ToolStatsError, match="not a \\(tool, seconds\\) pair"):
        stats.observe_many([("bash", 1.0), ("bash",)])  # type: ignore[list-item]
    assert stats.count() == 0
    assert stats.observe_many([("bash", 1.0), ("grep", 2)]) == 2
    assert stats.count() == 2


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("min_samples", 0, "min_samples"),
        ("max_samples", -1, "max_samples"),
        ("prior_mean_s", 0.0, "prior mean"),
    ],
)
def test_bad_settings(name: str, value: float, message: str) -> None:
    with pytest.raises(ToolStatsError, match=message):
        ToolDurationStats(**{name: value})  # type: ignore[arg-type]


def _direct_counts(path: Path, *, skip_negative: bool = False) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        for turn in json.loads(line)["turns"]:
            if turn["tool"] is not None and not (skip_negative and turn["tool_seconds"] < 0):
                counts[turn["tool"]] += 1
    return counts


@pytest.mark.skipif(not WORKLOADS.is_dir(), reason=f"{WORKLOADS} not present")
@pytest.mark.parametrize("file", ["swe_smith_agents.jsonl", "terminal_bench_agents.jsonl"])
def test_from_workload_counts_match_the_file(file: str) -> None:
    path = WORKLOADS / file
    expected = _direct_counts(path)
    stats = ToolDurationStats.from_workload(path, min_samples=5, on_negative="clamp")
    assert stats.tools() == tuple(sorted(expected))
    assert {tool: stats.count(tool) for tool in stats.tools()} == dict(expected)
    assert stats.count() == sum(expected.values())
    for tool, n in expected.items():
        assert stats.source(tool) == ("tool" if n >= 5 else "global")
    stats.check_integrity()


@pytest.mark.skipif(not WORKLOADS.is_dir(), reason=f"{WORKLOADS} not present")
def test_swe_smith_tools() -> None:
    stats = ToolDurationStats.from_workload(str(WORKLOADS / "swe_smith_agents.jsonl"))
    assert {"bash", "str_replace_editor", "submit"} <= set(stats.tools())
    assert stats.count() == sum(_direct_counts(WORKLOADS / "swe_smith_agents.jsonl").values())


@pytest.mark.skipif(not WORKLOADS.is_dir(), reason=f"{WORKLOADS} not present")
def test_terminal_bench_negative_durations() -> None:
    path = WORKLOADS / "terminal_bench_agents.jsonl"
    with pytest.raises(ToolStatsError, match="on_negative") as info:
        ToolDurationStats.from_workload(path)
    assert (info.value.tool, info.value.line) == ("bash:cat", 82)
    skipped = ToolDurationStats.from_workload(path, on_negative="skip")
    expected = _direct_counts(path, skip_negative=True)
    assert {tool: skipped.count(tool) for tool in skipped.tools()} == dict(expected)
    assert skipped.count() == sum(_direct_counts(path).values()) - 2


def test_on_negative_policies(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    turns = [{"tool": "a", "tool_seconds": -0.5}, {"tool": "a", "tool_seconds": 2.0}, {"tool": None}]
    path.write_text(json.dumps({"program_id": "p", "turns": turns}) + "\n")
    with pytest.raises(ToolStatsError, match=f"{path}:1: program 'p' turn 0: tool 'a'"):
        read_tool_calls(path)
    assert read_tool_calls(path, on_negative="clamp") == [
        ToolCallRecord(program_id="p", turn=0, tool="a", seconds=0.0),
        ToolCallRecord(program_id="p", turn=1, tool="a", seconds=2.0),
    ]
    assert read_tool_calls(path, on_negative="skip") == [ToolCallRecord("p", 1, "a", 2.0)]
    with pytest.raises(ToolStatsError, match="on_negative must be"):
        read_tool_calls(path, on_negative="ignore")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a program object"),
        ('{"program_id": "p", "turns": 3}', "turns must be a list"),
        ('{"program_id": "p", "turns": [{"tool": "bash", "tool_seconds": null}]}', "turn 0: tool 'bash'"),
        ('{"program_id": "p", "turns": [{"tool": "", "tool_seconds": 1.0}]}', "non-empty string or null"),
        ('{"program_id": "p", "turns": [{"tool": null}, {"tool": "ls", "tool_seconds": -1}]}', "turn 1"),
    ],
)
def test_malformed_trace_names_file_and_line(tmp_path: Path, bad_line: str, message: str) -> None:
    good = '{"program_id": "a", "turns": [{"tool": "bash", "tool_seconds": 0.5}, {"tool": null}]}'
    path = tmp_path / "trace.jsonl"
    path.write_text(f"{good}\n\n{good}\n{bad_line}\n{good}\n")
    with pytest.raises(ToolStatsError, match=message) as info:
        ToolDurationStats.from_workload(path)
    assert f"{path}:4:" in str(info.value)
    assert (info.value.path, info.value.line) == (path, 4)
    stats = ToolDurationStats()
    with pytest.raises(ToolStatsError):
        stats.observe_workload(path)
    assert stats.count() == 0


def test_missing_trace_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.jsonl"
    with pytest.raises(ToolStatsError, match="absent.jsonl"):
        ToolDurationStats.from_workload(path)


def test_snapshot_round_trip_through_json() -> None:
    stats = ToolDurationStats(min_samples=2, max_samples=3, prior_mean_s=0.5)
    stats.observe_many([("bash", 4.0), ("ls", 0.1), ("bash", 1.0), ("bash", 2.0), ("bash", 3.0), ("ls", 0.2)])
    data = json.loads(json.dumps(stats.to_dict()))
    back = ToolDurationStats.from_dict(data)
    assert back.to_dict() == stats.to_dict()
    assert (back.min_samples, back.max_samples, back.prior) == (2, 3, ExponentialPrior(0.5))
    assert data["tools"]["bash"] == {"max_samples": 3, "count": 4, "samples": [1.0, 2.0, 3.0]}
    assert data["global"]["samples"] == [2.0, 3.0, 0.2]
    for tool in (None, "bash", "ls", "cat"):
        assert back.source(tool) == stats.source(tool)
        assert back.model_for(tool).support() == stats.model_for(tool).support()
    back.observe("bash", 9.0)
    assert back.model_for("bash").support() == (2.0, 3.0, 9.0)  # 1.0 was the oldest kept


def test_empty_snapshot_round_trip() -> None:
    stats = ToolDurationStats(prior_mean_s=3.0)
    back = ToolDurationStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    assert (back.source(None), back.mean(None), back.count()) == ("prior", 3.0, 0)


def test_malformed_snapshots_are_rejected() -> None:
    stats = ToolDurationStats(max_samples=2)
    stats.observe_many([("bash", 1.0), ("ls", 2.0)])
    good = stats.to_dict()
    with pytest.raises(ToolStatsError, match="version"):
        ToolDurationStats.from_dict({**good, "version": 99})
    with pytest.raises(ToolStatsError, match="'tools'"):
        ToolDurationStats.from_dict({k: v for k, v in good.items() if k != "tools"})
    bad_tool = {**good, "tools": {**good["tools"], "ls": {"max_samples": 2, "count": 1, "samples": [-1.0]}}}
    with pytest.raises(ToolStatsError, match="tool 'ls'") as info:
        ToolDurationStats.from_dict(bad_tool)
    assert info.value.tool == "ls"
    lost = {**good, "tools": {"bash": good["tools"]["bash"]}}
    with pytest.raises(ToolStatsError, match="global count 2 != 1"):
        ToolDurationStats.from_dict(lost)


def test_concurrent_observe_loses_nothing() -> None:
    stats = ToolDurationStats(min_samples=50, max_samples=64)
    threads_n, per_thread, names = 8, 2000, ("bash", "grep", "pytest")
    start, done = threading.Barrier(threads_n + 1), threading.Event()
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        start.wait()
        try:
            for k in range(per_thread):
                stats.observe(names[(i + k) % 3], float(k % 7))
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    def reader() -> None:
        start.wait()
        try:
            while not done.is_set():
                for tool in (None, *names):
                    assert 0.0 <= stats.cdf(tool, 3.0) <= 1.0
                    stats.quantile(tool, 0.9) if stats.count() else None
                    stats.model_for(tool).support()
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        writers = [threading.Thread(target=writer, args=(i,)) for i in range(threads_n)]
        query = threading.Thread(target=reader)
        for t in (*writers, query):
            t.start()
        for t in writers:
            t.join()
        done.set()
        query.join()
    finally:
        sys.setswitchinterval(old_interval)
    assert errors == []
    expected: Counter[str] = Counter(names[(i + k) % 3] for i in range(threads_n) for k in range(per_thread))
    assert stats.count() == threads_n * per_thread
    assert {tool: stats.count(tool) for tool in names} == dict(expected)
    stats.check_integrity()
