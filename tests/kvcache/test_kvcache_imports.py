"""The package imports without torch or numpy, so the scheduler and its tests run anywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_pulls_in_no_tensor_library() -> None:
    code = "import sys, tether.kvcache; bad = {'torch', 'numpy'} & set(sys.modules); assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_public_names() -> None:
    import tether.kvcache as kvcache

    for name in kvcache.__all__:
        assert getattr(kvcache, name) is not None
