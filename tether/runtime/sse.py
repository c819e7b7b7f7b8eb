"""Server-sent events (the ``text/event-stream`` wire format), as the API server and the UI write them.

    event: <name>        (only when the event is named)
    data: <text>         (one line per line of the data)
    <blank line>

A line that starts with ``:`` is a comment (clients ignore it; it keeps an idle connection open).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def sse_event(data: str, *, event: str | None = None) -> str:
    """One event carrying ``data`` as is: an ``event:`` line when ``event`` is given, then a ``data:`` line per
    line of ``data``, then a blank line."""
    head = f"event: {event}\n" if event is not None else ""
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"{head}{lines}\n"


def sse_json(
    doc: Any,
    *,
    event: str | None = None,
    ensure_ascii: bool = True,
    default: Callable[[Any], Any] | None = None,
) -> str:
    """One event whose data is ``doc`` as JSON on one line (``json.dumps`` with ``ensure_ascii`` and
    ``default``)."""
    return sse_event(json.dumps(doc, ensure_ascii=ensure_ascii, default=default), event=event)


def sse_comment(text: str) -> str:
    """A comment line and the blank line that ends it: ``: text``."""
    return f": {text}\n\n"
