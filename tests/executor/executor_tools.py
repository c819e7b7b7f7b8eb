"""Real tools the executor tests run: sleeping, failing, flaky, recording what they receive."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

from pydantic import BaseModel

from tether.tools import tool

CALLS: Counter[str] = Counter()  # tool name -> calls started (reset by the tests' fixture)
RECEIVED: list[object] = []
_lock = threading.Lock()


class Doc(BaseModel):
    title: str
    words: int


@tool
async def nap(label: str, seconds: float) -> str:
    """Sleep on the event loop, return the label."""
    CALLS["nap"] += 1
    await asyncio.sleep(seconds)
    return label


@tool
def snooze(label: str, seconds: float) -> str:
    """Sleep in a thread (a sync tool), return the label."""
    with _lock:
        CALLS["snooze"] += 1
    time.sleep(seconds)
    return label


@tool
def make_doc(title: str, words: int) -> Doc:
    return Doc(title=title, words=words)


@tool
def describe(doc: Doc, pages: list[int], note: str) -> str:
    """Records exactly what arrived, to check that typed values flow between nodes."""
    RECEIVED.append((doc, pages, note))
    return f"{doc.title}:{doc.words}:{sum(pages)}"


@tool
async def flaky(hang_first: int) -> str:
    """Hangs on its first ``hang_first`` calls (so a timeout fires), then answers at once."""
    CALLS["flaky"] += 1
    if CALLS["flaky"] <= hang_first:
        await asyncio.sleep(30)
    return f"answered on call {CALLS['flaky']}"


@tool
def explode(message: str) -> str:
    CALLS["explode"] += 1
    raise RuntimeError(message)


@tool
def noop() -> None:
    return None
