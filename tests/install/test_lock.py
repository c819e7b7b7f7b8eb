"""The committed lock (dev/lockfile.py): parsing, the checks ``make install`` runs, the diff ``make
check-latest`` prints, and the environment running these tests being exactly the lock."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"

_spec = importlib.util.spec_from_file_location("lockfile", ROOT / "dev" / "lockfile.py")
lockfile = sys.modules.setdefault("lockfile", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(lockfile)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "requirements.lock"
    path.write_text(text)
    return path


def test_read_lock_takes_pins_and_skips_comments(tmp_path: Path) -> None:
    lock = write(tmp_path, "# made by make lock\nTyping_Extensions==4.15.0\n    # via torch\ntorch==2.13.0+cpu\n")
    assert lockfile.read_lock(lock) == {"typing-extensions": "4.15.0", "torch": "2.13.0+cpu"}


@pytest.mark.parametrize(
    ("text", "message"),
    [("numpy>=1.24\n", r":1: not a 'name==version' pin: 'numpy>=1.24'"), ("a==1\nA==2\n", ":2: a is pinned twice")],
)
def test_read_lock_names_the_bad_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(lockfile.LockError, match=message):
        lockfile.read_lock(write(tmp_path, text))


def test_unmet_requirements_names_missing_and_out_of_range_pins() -> None:
    requirements = [Requirement(r) for r in ("torch>=2.4", "amqtt<0.13", "jinja2>=3.1", "triton; sys_platform == 'x'")]
    pins = {"torch": "2.13.0+cpu", "amqtt": "0.13.0"}
    assert [str(m) for m in lockfile.unmet_requirements(requirements, pins, "pyproject.toml")] == [
        "amqtt: lock 0.13.0, found - (pyproject.toml needs amqtt<0.13)",
        "jinja2: lock -, found - (pyproject.toml needs jinja2>=3.1, the lock has no pin)",
    ]


def test_diff_lists_changed_added_and_missing_packages(tmp_path: Path) -> None:
    lock = write(tmp_path, "transformers==5.25.0\nkernels==0.19.1\nnumpy==2.3.0\n")
    installed = {"transformers": "5.26.0", "numpy": "2.3.0", "newdep": "1.0", "tether": "0.1.0", "pip": "23.2.1"}
    assert [str(m) for m in lockfile.diff(lock, installed)] == [
        "kernels: lock 0.19.1, found - (not installed)",
        "newdep: lock -, found 1.0 (not in the lock)",
        "transformers: lock 5.25.0, found 5.26.0 (differs)",
    ]


def test_this_environment_is_the_lock() -> None:
    """What CI tests is what the lock pins: every pin installed at its version, the lock closed under each
    package's own requirements, and pyproject's ranges met."""
    assert [str(m) for m in lockfile.check(LOCK, ROOT / "pyproject.toml")] == []


def test_the_lock_pins_the_cpu_torch_build() -> None:
    assert lockfile.read_lock(LOCK)["torch"].endswith("+cpu")
