"""``ToolRegistry``: tools by name, and loading the ``@tool`` functions a module or a ``.py`` file defines."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType

from tether.tools.errors import ToolDefinitionError, ToolLoadError, UnknownToolError
from tether.tools.tool import Tool

_load_lock = threading.Lock()


class ToolRegistry:
    """Tools by name. Registering the same ``Tool`` twice is a no-op; a different tool under a taken name
    raises ``ToolDefinitionError`` (unless it wraps the same function, e.g. a module loaded again)."""

    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools or []:
            self.register(t)

    def register(self, tool: Tool) -> Tool:
        if not isinstance(tool, Tool):
            raise ToolDefinitionError(f"can only register Tool objects (use @tool), got {tool!r}")
        held = self._tools.get(tool.name)
        if held is not None and held is not tool and _origin(held) != _origin(tool):
            raise ToolDefinitionError(
                f"tool name {tool.name!r} is taken by {_origin(held)}, cannot register {_origin(tool)}",
                tool=tool.name,
            )
        self._tools[tool.name] = tool
        return tool

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownToolError(name, self.names()) from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def load(self, spec: str, base_dir: Path | None = None) -> list[Tool]:
        """Import ``spec`` and register every ``Tool`` among its top-level names; returns them (by name).

        ``spec`` is a ``.py`` path (relative paths against ``base_dir``, else the working directory) or a
        module name; a module name that does not import but names ``base_dir/<a/b>.py`` is loaded from there.
        ``ToolLoadError`` when nothing loads or the module defines no tool.
        """
        module = _import(spec, base_dir)
        found = [value for value in vars(module).values() if isinstance(value, Tool)]
        if not found:
            raise ToolLoadError(spec, "it defines no @tool functions")
        unique = {t.name: t for t in found}
        for t in unique.values():
            self.register(t)
        return [unique[name] for name in sorted(unique)]


def _origin(tool: Tool) -> str:
    return f"{getattr(tool.fn, '__module__', '?')}.{getattr(tool.fn, '__qualname__', tool.name)}"


def _import(spec: str, base_dir: Path | None) -> ModuleType:
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        path = Path(spec)
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        return _import_path(spec, path)
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        local = (base_dir / Path(*spec.split("."))).with_suffix(".py") if base_dir is not None else None
        missing = exc.name or ""
        if (spec == missing or spec.startswith(missing + ".")) and local is not None and local.is_file():
            return _import_path(spec, local)
        raise ToolLoadError(spec, f"no module named {exc.name!r}") from exc
    except Exception as exc:  # noqa: BLE001 - the module's own import failed
        raise ToolLoadError(spec, f"{type(exc).__name__}: {exc}") from exc


def _import_path(spec: str, path: Path) -> ModuleType:
    """Load a file once per resolved path, as ``tether_tools.<stem>_<hash>`` in ``sys.modules``."""
    path = path.resolve()
    if not path.is_file():
        raise ToolLoadError(spec, f"no such file {path}")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    name = f"tether_tools_{path.stem}_{digest}"
    with _load_lock:
        if name in sys.modules:
            return sys.modules[name]
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ToolLoadError(spec, f"{path} is not a Python module")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - the file's own import failed
            del sys.modules[name]
            raise ToolLoadError(spec, f"{type(exc).__name__}: {exc}") from exc
        return module


default_registry = ToolRegistry()
"""The process-wide registry: ``@tool(registry=default_registry)`` opts a tool in."""
