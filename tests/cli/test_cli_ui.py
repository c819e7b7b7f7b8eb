"""``tether ui``'s command line: its subcommand and the snapshot's errors."""

from __future__ import annotations

import argparse
from pathlib import Path

from tether.cli import ui
from tether.cli.ui import main


def test_register_adds_the_ui_subcommand():
    parser = argparse.ArgumentParser(prog="tether")
    ui.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["ui", "--trace-dir", "runs"])
    assert (args.func, args.trace_dir, args.host, args.port) == (ui.run, Path("runs"), "127.0.0.1", 8765)


def test_the_command(runs, tmp_path, capsys):
    out = tmp_path / "sub" / "run.html"
    assert main(["--trace-dir", str(runs.root), "--snapshot", runs.agent, "-o", str(out)]) == 0
    assert out.is_file() and runs.agent in out.read_text()
    assert main(["--trace-dir", str(runs.root), "--snapshot", "no-such-run", "-o", str(out)]) == 2  # input
    assert main(["--trace-dir", str(runs.root), "--snapshot", runs.malformed, "-o", str(out)]) == 1
    assert main(["--trace-dir", str(runs.root), "--snapshot", runs.agent]) == 2
    assert main(["--trace-dir", str(runs.root), "-o", str(out)]) == 2
    assert "no run 'no-such-run'" in capsys.readouterr().err
