"""Functions and methods that run past a line limit, found with ``ast``.

    python dev/long_functions.py                  # every function in tether/ over 60 lines; exit 1 if any
    python dev/long_functions.py --max-lines 80 tether/runtime

A function's length counts from its first decorator (or its ``def`` line) to the last line of its body,
docstring included: ``end_lineno - lineno + 1``. Nested functions and methods are checked on their own and
named by their qualified name (``Class.method``, ``outer.inner``). Triton kernels (functions decorated with
``triton.jit``, called or not) in files under ``tether/kernels/`` are exempt: a kernel is one traced body that
cannot call Python helpers. Each hit is printed as ``file:line name length`` (``line``: the ``def`` line).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MAX_LINES = 60
KERNELS = Path("tether/kernels")

_Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class LongFunction:
    """One function over the limit: where its ``def`` is, its qualified name and its length in lines."""

    path: Path
    line: int
    name: str
    length: int

    def __str__(self) -> str:
        return f"{self.path.as_posix()}:{self.line} {self.name} {self.length}"


def length(node: _Function) -> int:
    """Lines from the first decorator (or the ``def``) to the end of the body."""
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    assert node.end_lineno is not None
    return node.end_lineno - start + 1


def is_triton_kernel(node: _Function) -> bool:
    """Decorated with ``triton.jit`` or ``triton.jit(...)``."""
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if (
            isinstance(target, ast.Attribute)
            and target.attr == "jit"
            and isinstance(target.value, ast.Name)
            and target.value.id == "triton"
        ):
            return True
    return False


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, _Function]]:
    """Every function and method under ``tree``, nested ones included, with its qualified name."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, _Function):
            name = f"{prefix}{child.name}"
            yield name, child
            yield from functions(child, f"{name}.")
        elif isinstance(child, ast.ClassDef):
            yield from functions(child, f"{prefix}{child.name}.")
        else:
            yield from functions(child, prefix)


def long_functions(path: Path, max_lines: int, relative_to: Path = ROOT) -> list[LongFunction]:
    """The functions in the Python file ``path`` longer than ``max_lines`` (Triton kernels under
    ``tether/kernels/`` exempt), in file order."""
    shown = path.resolve().relative_to(relative_to) if path.resolve().is_relative_to(relative_to) else path
    in_kernels = shown.is_relative_to(KERNELS)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        LongFunction(shown, node.lineno, name, length(node))
        for name, node in functions(tree)
        if length(node) > max_lines and not (in_kernels and is_triton_kernel(node))
    ]


def python_files(paths: list[Path]) -> list[Path]:
    """The ``.py`` files named or under the folders named, sorted."""
    found: set[Path] = set()
    for path in paths:
        found.update(path.rglob("*.py") if path.is_dir() else [path])
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="report functions longer than a line limit")
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders (default: the tether package)")
    parser.add_argument("--max-lines", type=int, default=DEFAULT_MAX_LINES, help="the limit (default 60)")
    args = parser.parse_args(argv)
    hits = [
        hit
        for path in python_files(args.paths or [ROOT / "tether"])
        for hit in long_functions(path, args.max_lines)
    ]
    for hit in hits:
        print(hit)
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())
