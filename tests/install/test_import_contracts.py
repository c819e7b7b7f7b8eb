"""The layer contracts (``.importlinter``, docs/architecture.md) hold, and they catch a commit that breaks a layer.

Each case copies the package, adds one import that crosses a layer, and runs ``lint-imports`` on the copy: the
contract that forbids it must fail by name.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT), "--no-cache", str(ROOT / ".importlinter")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )


def test_the_contracts_hold() -> None:
    out = lint(ROOT)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "9 kept, 0 broken" in out.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("kvcache/block.py", "import torch", "dag, tools and kvcache import no torch"),
        (
            "dag/ir.py",
            "import tether.runtime.engine.sequence",
            "dag, tools and kvcache import nothing above them",
        ),
        ("kvcache/pins.py", "import tether.tools.durations", "kvcache knows no programs and no tools"),
        ("runtime/server/app.py", "import tether.agents.result", "runtime never imports agents"),
        (
            "runtime/policies/keep.py",
            "import tether.runtime.engine.scheduler",
            "policies never import the engine",
        ),
        ("runtime/engine/llm.py", "import tether.cli.common", "the CLI is the top floor"),
        ("runtime/settings/checks.py", "import torch", "the settings import no torch"),
        ("runtime/server/app.py", "import tether.integrations.programs", "the framework adapters are leaves"),
        (
            "integrations/programs.py",
            "import tether.runtime.engine.sequence",
            "the framework adapters are thin",
        ),
    ],
)
def test_a_broken_layer_fails_its_contract(tmp_path: Path, module: str, line: str, contract: str) -> None:
    shutil.copytree(ROOT / "tether", tmp_path / "tether", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "tether" / module
    target.write_text(target.read_text() + f"\n{line}  # a commit that breaks a layer\n")
    out = lint(tmp_path)
    assert out.returncode == 1, out.stdout[-3000:]
    # a contract with ignored imports reports "BROKEN (N ignored imports)"
    broken = [ln for ln in out.stdout.splitlines() if ln.endswith(" BROKEN") or " BROKEN (" in ln]
    assert len(broken) == 1 and broken[0].startswith(contract), broken
