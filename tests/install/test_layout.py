"""The layout no installed package can shadow (docs/architecture.md "Layout").

Tether's subpackages have generic names that real distributions use too (Hugging Face's ``kernels``, the OpenAI
Agents SDK's ``agents``, ...). They live only under ``tether/`` (``tether/kernels/``), so with the checkout root
first on ``sys.path`` (``python -c`` or ``python -m`` run from it, pytest's rootdir, a REPL) an installed
distribution of that name is what ``import kernels`` finds, and ``tether.kernels`` is this project's, installed
(editable or from a wheel) or not.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

SUBPACKAGES = ("runtime", "dag", "tools", "kvcache", "kernels", "agents")
ROOT = Path(__file__).resolve().parents[2]
SITE = sysconfig.get_paths()["purelib"]


def run_python(code: str, cwd: Path, *, no_site: bool = False, pythonpath: list[str] | None = None) -> str:
    """``python -c code`` in ``cwd`` (so ``cwd`` is first on ``sys.path``); its stdout, or the test fails."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    cmd = [sys.executable, *(["-S"] if no_site else []), "-c", code]
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip()


def write_stub_distribution(site: Path, name: str) -> None:
    """An installed distribution ``name`` 0.0.1 in ``site``: a regular package and its dist-info, as pip lays
    out a wheel."""
    (site / name).mkdir()
    (site / name / "__init__.py").write_text(f"STUB = {name!r}\n")
    info = site / f"{name}-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
    (info / "top_level.txt").write_text(f"{name}\n")
    (info / "RECORD").write_text(f"{name}/__init__.py,,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")


def test_installed_distributions_win_over_the_checkout_folders(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    for name in SUBPACKAGES:
        write_stub_distribution(site, name)
    code = (
        "import sys, importlib, importlib.metadata as md\n"
        f"assert sys.path[0] == '', sys.path[:3]\n"
        f"for name in {SUBPACKAGES!r}:\n"
        "    module = importlib.import_module(name)\n"
        "    print(name, module.STUB, module.__file__, md.version(name))\n"
    )
    lines = run_python(code, ROOT, pythonpath=[str(site)]).splitlines()
    assert lines == [f"{n} {n} {site / n / '__init__.py'} 0.0.1" for n in SUBPACKAGES]


def test_the_subpackages_live_only_under_tether() -> None:
    """No folder at the checkout's top shares a subpackage's name: nothing there can shadow an installed one."""
    assert [n for n in SUBPACKAGES if (ROOT / n).exists()] == []
    assert all((ROOT / "tether" / n / "__init__.py").is_file() for n in SUBPACKAGES)


def test_no_regular_package_at_the_top_shares_a_name_with_an_installed_distribution() -> None:
    regular = sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file())
    provided = metadata.packages_distributions()
    clashes = {name: provided[name] for name in regular if name in provided and name != "tether"}
    assert clashes == {}, f"top-level folders shadow installed packages: {clashes}"


@pytest.mark.slow
def test_transformers_imports_hugging_faces_kernels_from_the_checkout_root() -> None:
    """The failure that broke a fresh clone: transformers 5.25 imports ``kernels`` from ``activations``."""
    metadata.distribution("kernels")  # Hugging Face's, in the lock as a transformers dependency
    out = run_python("import transformers.activations, kernels; print(kernels.__file__)", ROOT)
    assert out == os.path.join(SITE, "kernels", "__init__.py")


@pytest.mark.slow
@pytest.mark.parametrize("where", ["checkout root", "elsewhere"])
@pytest.mark.parametrize("installed", [True, False], ids=["installed", "uninstalled"])
def test_tether_imports(where: str, installed: bool, tmp_path: Path) -> None:
    """Installed: the venv's editable install. Uninstalled: no site processing (so no editable finder), the
    venv's packages on ``PYTHONPATH``, and the checkout on it too when run from elsewhere."""
    cwd = ROOT if where == "checkout root" else tmp_path
    pythonpath = None if installed else [SITE] + ([str(ROOT)] if where == "elsewhere" else [])
    code = (
        "from tether import LLM, Planner, tool\n"
        "import tether.runtime, tether.kernels.paged, tether.agents.decorator\n"
        "print(LLM.__module__, tether.runtime.__path__[-1], tether.kernels.paged.__file__)"
    )
    out = run_python(code, cwd, no_site=not installed, pythonpath=pythonpath)
    here = ROOT / "tether"
    assert out == f"tether.runtime.engine.llm {here / 'runtime'} {here / 'kernels' / 'paged.py'}"


@pytest.mark.slow
def test_a_built_wheel_holds_every_subpackage_under_tether(tmp_path: Path) -> None:
    """``pip wheel``: every module and its package data under ``tether/``, nothing at the wheel's top but
    ``tether`` and its dist-info; the extracted wheel imports without the checkout."""
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels)]
    out = subprocess.run([*build, str(ROOT)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    (wheel,) = wheels.glob("tether-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in SUBPACKAGES:
        assert f"tether/{name}/__init__.py" in names
    assert {"tether/kernels/paged.py", "tether/kernels/cpu_decode.cpp", "tether/runtime/engine/llm.py",
            "tether/runtime/policies/turns_prior.json", "tether/runtime/costs/cost_models/tiny-cpu.json"} <= names
    assert {n.split("/")[0] for n in names} == {"tether", wheel.name.split("-")[0] + "-0.1.0.dist-info"}
    assert not any(n.split("/")[0] in SUBPACKAGES for n in names), "a top-level name escaped into the wheel"

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import tether.runtime, tether.kernels, tether.runtime.engine.llm as llm\n"
        "from tether import Planner\n"
        "print(tether.runtime.__path__, tether.kernels.__path__, llm.__file__)"
    )
    out = run_python(code, tmp_path, no_site=True, pythonpath=[str(site), SITE])
    assert out == f"{[str(site / 'tether' / 'runtime')]} {[str(site / 'tether' / 'kernels')]} " + str(
        site / "tether" / "runtime" / "engine" / "llm.py"
    )
