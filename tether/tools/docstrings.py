"""Tool and argument descriptions from a docstring: Google (``Args:``), Sphinx (``:param x:``) or NumPy
(``Parameters`` + dashes) style. The summary is the text before the first section."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

_GOOGLE_ARGS = {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"}
_GOOGLE_SECTIONS = _GOOGLE_ARGS | {
    "returns",
    "return",
    "raises",
    "yields",
    "examples",
    "example",
    "notes",
    "note",
}
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_SPHINX_ANY = re.compile(r"^:\w+")
_GOOGLE_ITEM = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ITEM = re.compile(r"^(\w+)\s*(?::.*)?$")


@dataclass(frozen=True)
class Docstring:
    summary: str = ""
    params: dict[str, str] = field(default_factory=dict)


def parse_docstring(doc: str | None) -> Docstring:
    """Summary and per-parameter descriptions (continuation lines joined by spaces)."""
    if not doc:
        return Docstring()
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    params: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        header = stripped.rstrip(":").lower()
        if stripped.endswith(":") and header in _GOOGLE_SECTIONS and not line.startswith(" "):
            i = _google_section(lines, i + 1, params if header in _GOOGLE_ARGS else None)
            continue
        if i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"} and not line.startswith(" "):
            i = _numpy_section(lines, i + 2, params if header in {"parameters", "other parameters"} else None)
            continue
        if _SPHINX_ANY.match(stripped):
            i = _sphinx_field(lines, i, params)
            continue
        summary.append(line)
        i += 1
    return Docstring(" ".join(s.strip() for s in summary if s.strip()), params)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _google_section(lines: list[str], i: int, params: dict[str, str] | None) -> int:
    """Indented items ``name (type): text`` with deeper-indented continuations; ends at a dedent to 0."""
    current: str | None = None
    item_indent: int | None = None
    while i < len(lines):
        line = lines[i]
        if line.strip() and _indent(line) == 0:
            break
        if line.strip():
            ind = _indent(line)
            m = _GOOGLE_ITEM.match(line.strip())
            if m and (item_indent is None or ind <= item_indent):
                item_indent = ind
                current = m.group(1).lstrip("*")
                if params is not None:
                    params[current] = m.group(2).strip()
            elif current is not None and params is not None:
                params[current] = f"{params[current]} {line.strip()}".strip()
        i += 1
    return i


def _numpy_section(lines: list[str], i: int, params: dict[str, str] | None) -> int:
    """``name : type`` lines at the section's indent, descriptions indented below; ends at the next header."""
    current: str | None = None
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and lines[i + 1].strip() and set(lines[i + 1].strip()) == {"-"}:
            break
        if line.strip() and _indent(line) == 0:
            m = _NUMPY_ITEM.match(line.strip())
            current = m.group(1) if m else None
            if current is not None and params is not None:
                params[current] = ""
        elif line.strip() and current is not None and params is not None:
            params[current] = f"{params[current]} {line.strip()}".strip()
        i += 1
    return i


def _sphinx_field(lines: list[str], i: int, params: dict[str, str]) -> int:
    m = _SPHINX_PARAM.match(lines[i].strip())
    name = m.group(1) if m else None
    if name is not None:
        params[name] = m.group(2).strip()
    i += 1
    while i < len(lines) and lines[i].strip() and not _SPHINX_ANY.match(lines[i].strip()):
        if name is not None:
            params[name] = f"{params[name]} {lines[i].strip()}".strip()
        i += 1
    return i
