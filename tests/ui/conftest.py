"""The UI tests' runs, a ``tether ui`` process over them and a headless Chromium (Debian's ``chromium``,
driven by playwright; the browser tests skip when there is no chromium executable)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.ui.process import ui_process
from tests.ui.traces import Runs, write_runs

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "out" / "ui"


def chromium_path() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return write_runs(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def ui(runs: Runs) -> Iterator[str]:
    """The base URL of ``tether ui --trace-dir`` over ``runs``."""
    with ui_process(runs.root, cwd=REPO) as base:
        yield base


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium executable (apt-get install chromium): the browser tests need one")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extras)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@dataclass
class Tab:
    """A page and what its console reported as errors (console.error and uncaught exceptions)."""

    page: object
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def tab(browser) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    tab = Tab(page)
    page.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: tab.errors.append(f"uncaught: {exc}"))
    yield tab
    context.close()


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``tether run examples/research.yaml --model tiny --trace-dir DIR``: the run directory it recorded."""
    root = tmp_path_factory.mktemp("recorded")
    cmd = [sys.executable, "-m", "tether.cli", "run", "examples/research.yaml", "--model", "tiny"]
    done = subprocess.run(
        [*cmd, "--trace-dir", str(root)], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = sorted(root.glob("*/run.json"))
    if not found:
        pytest.skip("tether run --trace-dir does not record run directories (run.json) yet")
    return root, found[0].parent.name
