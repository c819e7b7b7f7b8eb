"""``call_hook``: lets a front-end intercept calls of ``Tool`` objects without ``tools`` depending on it.

While ``call_hook`` is set (a ``ContextVar``), calling a ``Tool`` returns ``hook(tool, args, kwargs, options)``
instead of calling its function: decorator agents use it to turn ``search(q="x")`` into a node of the
running program, and ``search.options(timeout=2.0)(q="x")`` into one with those options (``options``: what
``Tool.options`` was given, ``{}`` for a plain call; the front-end checks them). Unset (the default), a
``Tool`` call is a plain function call and options are not read.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tether.tools.tool import Tool

ToolCallHook = Callable[["Tool", tuple[Any, ...], dict[str, Any], dict[str, Any]], Any]

call_hook: ContextVar[ToolCallHook | None] = ContextVar("tether_tool_call_hook", default=None)
