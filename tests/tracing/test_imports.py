"""The tracing package imports in one direction: no module imports one that imports it back, even from inside
a function; the exporters take their shared helpers from ``spans``, and ``export`` only dispatches to them."""

from __future__ import annotations

import ast
from pathlib import Path

import tether.runtime.tracing as tracing

PACKAGE = "tether.runtime.tracing"
ROOT = Path(tracing.__file__).parent


def imports_of(path: Path) -> set[str]:
    """The ``tether.runtime.tracing`` modules that the file imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n.removeprefix(PACKAGE + ".") for n in names if n.startswith(PACKAGE + ".")}
    return {n for n in found if (ROOT / f"{n}.py").exists()}


def graph() -> dict[str, set[str]]:
    return {p.stem: imports_of(p) for p in sorted(ROOT.glob("*.py")) if p.stem != "__init__"}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}  # "open" while on the path, "done" after

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for dep in sorted(edges.get(module, ())):
            if state.get(dep) == "open":
                return [*path[path.index(dep) :], dep] if dep in path else [module, dep]
            if dep not in state and (cycle := visit(dep, [*path, dep])):
                return cycle
        state[module] = "done"
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_the_tracing_modules_import_no_loop() -> None:
    assert find_cycle(graph()) is None


def test_the_exporters_share_spans_and_export_only_dispatches() -> None:
    edges = graph()
    assert edges["export_chrome"] == {"events", "spans", "store"}
    assert edges["export_otlp"] == {"events", "spans", "store"}
    assert edges["export"] == {"export_chrome", "export_jsonl", "export_otlp", "spans", "store"}
    assert "export" not in set().union(*(deps for module, deps in edges.items() if module != "export"))


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
