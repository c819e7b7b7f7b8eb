"""Lazy re-exports (PEP 562): a package names what it re-exports and from which module, and each name is
imported on first access, so importing the package itself stays light (no torch, no triton, no broker).

    __getattr__, __dir__ = lazy_exports(__name__, {"LLM": "tether.runtime.engine.llm", ...})

This module imports nothing from ``tether``, so every layer may use it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of module ``package`` for ``exports`` (name -> module holding it).

    ``__getattr__(name)`` imports the module of ``name`` (its ``ImportError`` propagates), stores the value in
    ``package``'s globals, so the next access is a plain attribute, and returns it; a name not in ``exports``
    raises ``AttributeError("module 'package' has no attribute 'name'")``. ``__dir__()`` lists the module's
    globals and every export, sorted. Nothing is imported until a name is first used.
    """
    table = dict(exports)

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
