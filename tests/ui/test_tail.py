"""``TraceTail``: whole lines from where it stopped, the reader's rules for cut and malformed lines."""

from __future__ import annotations

import json

import pytest

from tests.ui.traces import research_program
from tether.runtime.tracing import TraceFormatError, read_trace
from tether.runtime.ui.tail import TraceTail


def lines(n: int) -> list[str]:
    return [json.dumps(e.to_dict()) + "\n" for e in research_program("p", 0.0)[:n]]


def test_reads_whole_lines_and_continues_from_its_offset(tmp_path):
    path = tmp_path / "events.jsonl"
    first, second, third = lines(3)
    path.write_text(first + second + third[:20])
    tail = TraceTail(path)
    assert [e.kind for e in tail.read()] == ["program_start", "node_start"]
    assert tail.offset == len(first + second)
    assert tail.read() == []  # the cut line waits for its newline
    with path.open("a") as f:
        f.write(third[20:])
    assert [e.kind for e in tail.read()] == ["tool_call"]
    assert tail.offset == path.stat().st_size
    assert [e.kind for e in TraceTail(path, len(first)).read()] == ["node_start", "tool_call"]


def test_final_read_takes_an_unterminated_line_that_parses_and_drops_one_that_does_not(tmp_path):
    path = tmp_path / "events.jsonl"
    first, second = lines(2)
    path.write_text(first + second.rstrip("\n"))
    tail = TraceTail(path)
    assert len(tail.read(final=True)) == 2 and not tail.truncated
    path.write_text(first + second[:15])
    tail = TraceTail(path)
    assert len(tail.read(final=True)) == 1 and tail.truncated
    assert len(read_trace(path)) == 1  # the store's reader agrees


def test_a_malformed_complete_line_is_an_error_naming_its_line(tmp_path):
    path = tmp_path / "events.jsonl"
    first, second, third = lines(3)
    path.write_text(first + second + '{"kind": "nope", "program_id": "p", "ts": 1}\n' + third)
    with pytest.raises(TraceFormatError) as tail_error:
        TraceTail(path).read()
    with pytest.raises(TraceFormatError) as store_error:
        read_trace(path)
    assert tail_error.value.line == store_error.value.line == 3
    with pytest.raises(TraceFormatError) as from_offset:
        TraceTail(path, len(first)).read()
    assert from_offset.value.line == 3


def test_a_missing_file_has_no_events(tmp_path):
    assert TraceTail(tmp_path / "absent.jsonl").read(final=True) == []
