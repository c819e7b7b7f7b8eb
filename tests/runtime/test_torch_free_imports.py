"""The scheduler, the policies, replay, the simulator and the cost models import without torch: a fresh
interpreter with ``sys.modules["torch"] = None`` (so any ``import torch`` fails) imports each of them."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

ENGINE_MODULES = (
    "tether.runtime.engine.scheduler",
    "tether.runtime.engine.sequence",
    "tether.runtime.engine.admission",
    "tether.runtime.engine.llm_engine",
    "tether.runtime.engine.stats",
    "tether.runtime.engine.runner_output",
    "tether.runtime.engine.models.config",
)
# every module of tether/runtime/<package>
WHOLE_PACKAGES = ("policies", "programs", "replay", "sim", "costs", "cluster")

CHECK = """
import importlib, sys
sys.modules["torch"] = None
failed = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        failed[name] = repr(exc)
assert not failed, failed
"""


def torch_free_modules() -> list[str]:
    names = list(ENGINE_MODULES)
    for package in WHOLE_PACKAGES:
        prefix = f"tether.runtime.{package}"
        names.append(prefix)
        names += [f"{prefix}.{m.name}" for m in pkgutil.iter_modules([str(REPO / "tether" / "runtime" / package)])]
    return names


def test_the_list_covers_every_policy_and_the_replay_driver() -> None:
    names = torch_free_modules()
    assert {"tether.runtime.policies.tether", "tether.runtime.policies.vllm"} <= set(names)
    assert {
        "tether.runtime.replay.driver",
        "tether.runtime.replay.runner",
        "tether.runtime.sim.backend",
    } <= set(names)


def test_scheduler_policies_replay_and_simulator_import_without_torch() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK, *torch_free_modules()], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_the_check_fails_when_torch_is_imported() -> None:
    """The guard itself works: a module that imports torch is reported."""
    result = subprocess.run(
        [sys.executable, "-c", CHECK, "tether.runtime.engine.model_runner"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "tether.runtime.engine.model_runner" in result.stderr
