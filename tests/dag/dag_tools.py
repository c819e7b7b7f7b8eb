"""Tools the DAG tests compile against (loaded by module name or path)."""

from __future__ import annotations

from pydantic import BaseModel

from tether.tools import tool


class Hit(BaseModel):
    url: str
    score: float


@tool
def search(query: str, k: int = 3) -> list[Hit]:
    """Search."""
    return [Hit(url=f"https://example.org/{query}/{i}", score=1.0 / (i + 1)) for i in range(k)]


@tool
def fetch(url: str) -> str:
    """Fetch a page."""
    return f"<page {url}>"


@tool
def count(text: str) -> int:
    return len(text)


@tool
def untyped(x):  # noqa: ANN001, ANN201 - an unannotated tool: its output is not checked
    return x
