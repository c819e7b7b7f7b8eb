"""``tether.runtime.sse`` and the bytes its two writers put on the wire: the OpenAI stream
(``tether.runtime.server.streaming``) and the UI's live runs (``tether.runtime.ui.live``)."""

from __future__ import annotations

from datetime import date

from tether.runtime.server import streaming
from tether.runtime.sse import sse_comment, sse_event, sse_json
from tether.runtime.ui import live


def test_an_event_is_its_optional_name_its_data_lines_and_a_blank_line() -> None:
    assert sse_event("[DONE]") == "data: [DONE]\n\n"
    assert sse_event("x", event="run") == "event: run\ndata: x\n\n"
    assert sse_event("one\ntwo") == "data: one\ndata: two\n\n"
    assert sse_comment("keep-alive") == ": keep-alive\n\n"


def test_json_data_is_one_line() -> None:
    assert sse_json({"a": [1, "é"]}) == 'data: {"a": [1, "\\u00e9"]}\n\n'
    assert sse_json({"a": "é"}, ensure_ascii=False) == 'data: {"a": "é"}\n\n'
    assert sse_json({"t": "x\ny"}, event="e") == 'event: e\ndata: {"t": "x\\ny"}\n\n'
    assert sse_json({"d": date(2024, 1, 2)}, default=str) == 'data: {"d": "2024-01-02"}\n\n'


def test_the_openai_stream_bytes() -> None:
    assert streaming.DONE == b"data: [DONE]\n\n"
    chunk = {"choices": [{"delta": {"content": "héllo\n"}}]}
    assert streaming.sse(chunk) == 'data: {"choices": [{"delta": {"content": "héllo\\n"}}]}\n\n'.encode()


def test_the_ui_live_event_text() -> None:
    assert (
        live.sse("run", {"status": "running", "é": 1})
        == 'event: run\ndata: {"status": "running", "\\u00e9": 1}\n\n'
    )
    assert live.sse("end", {"at": date(2024, 1, 2)}) == 'event: end\ndata: {"at": "2024-01-02"}\n\n'
