"""``tether_home()``: the deployment's cache folder, ``$TETHER_HOME`` (default ``~/.cache/tether``). Torch-free,
so every package (``tools`` included) resolves it the same way."""

from __future__ import annotations

import os
from pathlib import Path


def tether_home() -> Path:
    return Path(os.environ.get("TETHER_HOME") or "~/.cache/tether").expanduser()
