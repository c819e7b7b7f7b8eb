"""``tether.agents`` exports every front-end lazily: importing it loads neither torch nor the executor."""

from __future__ import annotations

import subprocess
import sys

import tether.agents as agents


def test_every_export_resolves():
    for name in agents.__all__:
        assert getattr(agents, name) is not None, name


def test_import_is_light():
    code = (
        "import sys, tether.agents; print('torch' in sys.modules, 'tether.runtime.executor' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
