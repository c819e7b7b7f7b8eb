"""JSON Lines: one JSON document per line, blank lines skipped, every document numbered by its 1-based line.

This module imports nothing from ``tether``, so every layer may use it (``tools`` as well as ``runtime``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class JsonlError(ValueError):
    """Line ``line`` (1-based) of ``path`` is not JSON; ``error`` is the decoder's reason."""

    def __init__(self, path: str | Path, line: int, error: json.JSONDecodeError):
        super().__init__(f"{path}:{line}: not valid JSON ({error.msg} at column {error.colno})")
        self.path = path
        self.line = line
        self.error = error


@dataclass(frozen=True)
class JsonLine:
    """The document of one non-blank line, and where it stands."""

    path: str | Path
    line: int
    doc: Any


def parse_jsonl(lines: Iterable[str], path: str | Path) -> Iterator[JsonLine]:
    """The documents of ``lines`` (the text of ``path``, one line each) in order, lazily; blank lines (white
    space only) are skipped but counted. A line that is not JSON raises ``JsonlError`` when it is reached,
    after the documents before it were yielded."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise JsonlError(path, number, exc) from None
        yield JsonLine(path, number, doc)


def read_jsonl(path: str | Path, *, encoding: str = "utf-8") -> Iterator[JsonLine]:
    """``parse_jsonl`` over the file ``path``, read line by line as it is iterated (the file is closed when
    the iteration ends). ``OSError`` and ``UnicodeDecodeError`` from reading propagate as they are."""
    with Path(path).open(encoding=encoding) as f:
        yield from parse_jsonl(f, path)
