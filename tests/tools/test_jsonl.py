"""``tether.jsonl``: JSON Lines read line by line, blank lines skipped but counted, a typed error naming the
file and the 1-based line of a line that is not JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tether.jsonl import JsonlError, JsonLine, parse_jsonl, read_jsonl


def test_documents_in_order_with_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n   \n[2, 3]\n"x"\n', encoding="utf-8")
    assert list(read_jsonl(path)) == [
        JsonLine(path, 1, {"a": 1}),
        JsonLine(path, 4, [2, 3]),
        JsonLine(path, 5, "x"),
    ]


def test_invalid_json_names_the_file_and_line_after_the_lines_before_it(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text('{"a": 1}\n\n{not json\n{"c": 3}\n', encoding="utf-8")
    records = read_jsonl(path)
    assert next(records).doc == {"a": 1}
    with pytest.raises(JsonlError) as info:
        next(records)
    error = info.value
    assert isinstance(error, ValueError)
    assert (error.path, error.line, error.error.colno) == (path, 3, 2)
    assert (
        str(error)
        == f"{path}:3: not valid JSON (Expecting property name enclosed in double quotes at column 2)"
    )
    assert error.__cause__ is None


def test_parse_jsonl_takes_lines_already_split() -> None:
    lines = ['{"k": "ü"}', "", "null"]
    assert list(parse_jsonl(lines, "mem.jsonl")) == [
        JsonLine("mem.jsonl", 1, {"k": "ü"}),
        JsonLine("mem.jsonl", 3, None),
    ]
    assert list(parse_jsonl([], "empty.jsonl")) == []


def test_the_file_is_read_as_utf8_and_read_errors_propagate(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes('{"name": "café"}\r\n'.encode())
    assert [r.doc for r in read_jsonl(path)] == [{"name": "café"}]
    path.write_bytes(b'{"a": "\xff"}\n')
    with pytest.raises(UnicodeDecodeError):
        list(read_jsonl(path))
    with pytest.raises(FileNotFoundError):
        list(read_jsonl(tmp_path / "absent.jsonl"))


def test_each_caller_keeps_its_error_type_and_message(tmp_path: Path) -> None:
    from tether.runtime.replay.workload import WorkloadError, load_workload
    from tether.tools.errors import ToolStatsError
    from tether.tools.traces import read_tool_calls

    turn = {"prompt_tokens": 1, "new_input_tokens": 1, "output_tokens": 1, "tool": None}
    good = json.dumps({"program_id": "p", "turns": [turn]})
    path = tmp_path / "w.jsonl"
    path.write_text(f'\n{good}\n{{"program_id": \n', encoding="utf-8")
    with pytest.raises(ToolStatsError) as stats_info:
        read_tool_calls(path)
    # the file's lines keep their "\n", so the decoder stops on the line after it
    assert str(stats_info.value) == f"{path}:3: not valid JSON (Expecting value at column 1)"
    assert (stats_info.value.path, stats_info.value.line) == (path, 3)
    with pytest.raises(WorkloadError) as workload_info:
        load_workload(path)
    assert str(workload_info.value) == f"{path}:3: not JSON: Expecting value: line 1 column 16 (char 15)"
