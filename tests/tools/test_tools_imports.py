"""The tools package imports without torch or numpy, so duration statistics run anywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_pulls_in_no_tensor_library() -> None:
    code = "import sys, tether.tools; bad = {'torch', 'numpy'} & set(sys.modules); assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_public_names() -> None:
    import tether.tools as tools
    import tether.tools.durations as durations

    for name in tools.__all__:
        assert getattr(tools, name) is not None
    for name in durations.__all__:
        assert getattr(durations, name) is not None
