"""``tether run`` / ``run_workflow``, ``AgentRuntime.create`` and ``LocalEngineBackend.create`` share the
deployment's one ``ToolDurationStats`` (compiler, tool runner, engine) and save it when the run ends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_cli_run import MARKS, workdir, write  # noqa: F401 - the fixture
from tether.agents.runtime import AgentRuntime
from tether.cli import main
from tether.runtime.engine.config import EngineConfig
from tether.runtime.executor.backends.local_engine import LocalEngineBackend
from tether.runtime.executor.workflow import prepare_workflow
from tether.tools.store import FILE_NAME, deployment_stats

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TETHER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_two_runs_share_and_persist_the_stats(home, workdir, capsys):  # noqa: F811
    wf = write(workdir, MARKS)
    stats = deployment_stats()
    for i in range(2):
        code = main(["run", str(wf), "--input", f"log={workdir / 'log.txt'}", "--trace-dir", str(workdir / "t")])
        capsys.readouterr()
        assert code == 0 and deployment_stats() is stats and stats.count("mark") == 2 * (i + 1)
    saved = json.loads((home / FILE_NAME).read_text())
    assert saved["version"] == 1 and saved["tools"]["mark"]["count"] == 4
    assert prepare_workflow(wf, {"log": "x"})[0].stats is stats
    # a second process reads what this one saved
    code = "from tether.tools.store import deployment_stats; print(deployment_stats().count('mark'))"
    env = {"TETHER_HOME": str(home), "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "4"


async def test_engine_runner_and_compiler_share_one_instance(home):
    backend = await LocalEngineBackend.create(EngineConfig(model="tiny", num_kv_blocks=16))
    try:
        engine_stats = await backend.engine.call(lambda e: e.programs.ctx.tool_stats)
        assert engine_stats is deployment_stats()
    finally:
        await backend.close()
    assert (home / FILE_NAME).is_file()
    rt = await AgentRuntime.create(model=None, trace_dir=home / "runs")
    try:
        assert rt.tool_stats is deployment_stats() and rt.executor.tools.stats is rt.tool_stats
        assert rt.start_program("p").compiled.stats is rt.tool_stats
    finally:
        await rt.close()
