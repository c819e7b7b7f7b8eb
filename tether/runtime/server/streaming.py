"""Server-sent events, and holding back a streamed reply's tool calls until they can be parsed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from tether.runtime.engine.chat import TOOL_CALL_OPEN
from tether.runtime.server.errors import APIError
from tether.runtime.sse import sse_event, sse_json

DONE = sse_event("[DONE]").encode()


def sse(doc: dict[str, Any]) -> bytes:
    """``data: {doc}`` as the OpenAI stream sends it: UTF-8 JSON, non-ASCII characters unescaped."""
    return sse_json(doc, ensure_ascii=False).encode()


async def sse_stream(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """``data: {chunk}`` per chunk, then ``data: [DONE]``. An error after the response started is sent as an
    ``{"error": ...}`` event (the OpenAI SDK raises it as ``APIError``), then the stream ends."""
    try:
        async for chunk in chunks:
            yield sse(chunk)
    except APIError as exc:
        yield sse(exc.body())
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    yield DONE


class ContentSplitter:
    """Splits streamed text into content that can be sent now and text held back: everything from the first
    ``<tool_call>`` on (parsed when the reply ends), and a tail that may be the start of that tag."""

    def __init__(self) -> None:
        self.text = ""
        self.sent = 0  # characters of ``text`` sent as content
        self.in_call = False

    def push(self, piece: str) -> str:
        """Add ``piece``; returns the content that may be sent now."""
        self.text += piece
        if self.in_call:
            return ""
        start = self.text.find(TOOL_CALL_OPEN, self.sent)
        if start >= 0:
            self.in_call = True
            return self._take(start)
        return self._take(len(self.text) - _partial_tag(self.text))

    def _take(self, end: int) -> str:
        out = self.text[self.sent : end]
        self.sent = max(self.sent, end)
        return out


def _partial_tag(text: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``<tool_call>``."""
    for k in range(min(len(text), len(TOOL_CALL_OPEN) - 1), 0, -1):
        if TOOL_CALL_OPEN.startswith(text[-k:]):
            return k
    return 0
