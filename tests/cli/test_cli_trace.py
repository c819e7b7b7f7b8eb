"""``tether trace export``: each format written to ``-o``, and every error a one-line message with exit 2 and
no file written (the exporters themselves: tests/tracing/test_export.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from tests.tracing.test_export import (
    assert_chrome_well_formed,
    assert_otlp_well_formed,
    record,
    research_events,
)
from tether.cli import trace as trace_cli


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tether")
    trace_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_export(tmp_path: Path, capsys) -> None:
    run_id = record(tmp_path, {"main": research_events()})
    out = tmp_path / "trace.json"
    assert (
        cli(["trace", "export", run_id, "--format", "chrome", "-o", str(out), "--trace-dir", str(tmp_path)])
        == 0
    )
    assert_chrome_well_formed(json.loads(out.read_text()))
    out = tmp_path / "otlp.json"
    assert (
        cli(
            ["trace", "export", run_id, "--format", "otlp-json", "-o", str(out), "--trace-dir", str(tmp_path)]
        )
        == 0
    )
    assert_otlp_well_formed(json.loads(out.read_text()))


@pytest.mark.parametrize("problem", ["unknown run", "malformed trace", "unknown trace"])
def test_cli_errors_exit_2(tmp_path: Path, capsys, problem: str) -> None:
    run_id = record(tmp_path, {"main": research_events()})
    args = ["trace", "export", run_id, "-o", str(tmp_path / "x.json"), "--trace-dir", str(tmp_path)]
    if problem == "unknown run":
        args[2] = "no-such-run"
    elif problem == "malformed trace":
        path = tmp_path / run_id / "events.jsonl"
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join([lines[0], "{not json\n", *lines[1:]]))
    else:
        args += ["--trace", "sglang"]
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("tether trace export: ") and err.count("\n") == 1
    assert not (tmp_path / "x.json").exists()
