"""Where in the agent function something happened: the innermost frame of a function decorated with
``@agent`` (or, failing that, the innermost frame outside this package and ``tools``)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import CodeType

AGENT_CODES: set[CodeType] = set()
"""The code objects of every ``@agent`` function (registered by ``Agent``)."""

_SKIPPED = (str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2] / "tools"))


def agent_location() -> tuple[str | None, int | None]:
    """``(file, line)`` of the agent code being run now; ``(None, None)`` when there is none on the stack."""
    frame = sys._getframe(1)
    fallback: tuple[str | None, int | None] = (None, None)
    while frame is not None:
        code = frame.f_code
        if code in AGENT_CODES:
            return code.co_filename, frame.f_lineno
        if fallback[0] is None and not str(Path(code.co_filename).resolve()).startswith(_SKIPPED):
            fallback = (code.co_filename, frame.f_lineno)
        frame = frame.f_back  # type: ignore[assignment]
    return fallback
