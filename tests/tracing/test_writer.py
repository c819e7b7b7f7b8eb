"""``JsonlTraceWriter`` (tether/runtime/tracing/jsonl_writer.py): the writer thread keeps emit order, a reader
sees lines within the flush interval without close, flush and close drain, a failed write is raised, and an
unclosed writer is drained when it is collected or the process exits."""

from __future__ import annotations

import errno
import gc
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tether.runtime.tracing import (
    JsonlTraceWriter,
    RunRecorder,
    TraceClosedError,
    TraceEvent,
    TraceWriteError,
    list_runs,
    read_trace,
)

DEADLINE_S = 5.0  # how long a poll waits for the writer thread: far above the 0.1 s interval
HOLD_S = 60.0  # a flush interval no test outlives: lines stay with the writer thread until flush or close
DEV_FULL = Path("/dev/full")  # every write fails with ENOSPC
needs_dev_full = pytest.mark.skipif(not DEV_FULL.exists(), reason="needs /dev/full")


def ev(i: int, program: str = "p") -> TraceEvent:
    return TraceEvent("kv", program, 1000.0 + i, None, {"action": "pin_hit", "blocks": i})


def raw_lines(path: Path) -> list[dict]:
    """The complete lines of ``path`` as another process would read them (no ``read_trace`` sync)."""
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.split("\n")[:-1]]


def poll(check, deadline_s: float = DEADLINE_S):
    """``check()`` once it is truthy; fails the test at the deadline."""
    end = time.monotonic() + deadline_s
    while not (found := check()):
        assert time.monotonic() < end, "the writer thread did not get there before the deadline"
        time.sleep(0.01)
    return found


def writer_threads(path: Path) -> list[threading.Thread]:
    """The live writer threads of ``path`` (named ``trace-writer:<path>``)."""
    return [t for t in threading.enumerate() if t.name == f"trace-writer:{path}"]


def test_events_are_written_in_emit_order(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    events = [ev(i) for i in range(500)]
    with JsonlTraceWriter(path) as writer:
        for e in events:
            writer.emit(e)
        assert len(writer_threads(path)) == 1
    assert writer.count == 500
    assert read_trace(path) == events
    assert [line["attrs"]["blocks"] for line in raw_lines(path)] == list(range(500))


def test_several_emitting_threads_keep_their_own_order(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    writer = JsonlTraceWriter(path)

    def emit_all(program: str) -> None:
        for i in range(250):
            writer.emit(ev(i, program))

    threads = [threading.Thread(target=emit_all, args=(f"p{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    lines = raw_lines(path)
    assert len(lines) == 1000
    for k in range(4):
        blocks = [line["attrs"]["blocks"] for line in lines if line["program_id"] == f"p{k}"]
        assert blocks == list(range(250))


def test_a_reader_sees_events_within_the_flush_interval_without_close(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    writer = JsonlTraceWriter(path)
    writer.emit(ev(0))
    writer.emit(ev(1))
    assert [line["attrs"]["blocks"] for line in poll(lambda: raw_lines(path))] in ([0], [0, 1])
    poll(lambda: len(raw_lines(path)) == 2)
    writer.emit(ev(2))  # a second batch, after the writer thread went idle
    poll(lambda: len(raw_lines(path)) == 3)
    assert read_trace(path) == [ev(0), ev(1), ev(2)]
    writer.close()


def test_lines_wait_for_the_interval_and_flush_writes_them(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    writer = JsonlTraceWriter(path, flush_interval_s=HOLD_S)
    for i in range(3):
        writer.emit(ev(i))
    assert raw_lines(path) == []  # held by the writer thread: no write per event
    writer.flush()
    assert [line["attrs"]["blocks"] for line in raw_lines(path)] == [0, 1, 2]
    writer.emit(ev(3))
    assert read_trace(path) == [ev(0), ev(1), ev(2), ev(3)]  # read_trace waits for this process's writers
    writer.close()


def test_close_drains_everything_and_emit_after_close_raises(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    writer = JsonlTraceWriter(path, flush_interval_s=HOLD_S)
    for i in range(1000):
        writer.emit(ev(i))
    writer.close()
    assert [line["attrs"]["blocks"] for line in raw_lines(path)] == list(range(1000))
    assert writer_threads(path) == []
    with pytest.raises(TraceClosedError) as err:
        writer.emit(ev(1000))
    assert isinstance(err.value, ValueError) and err.value.path == path
    assert str(err.value) == f"trace {path} is closed"
    writer.close()  # idempotent
    writer.flush()  # a no-op once closed
    assert len(raw_lines(path)) == 1000


def test_a_second_writer_appends(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "t.jsonl"
    with JsonlTraceWriter(path) as first:
        first.emit(ev(0))
    with JsonlTraceWriter(path) as second:
        second.emit(ev(1))
    assert read_trace(path) == [ev(0), ev(1)]


def test_the_flush_interval_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="flush_interval_s must be > 0, got 0"):
        JsonlTraceWriter(tmp_path / "t.jsonl", flush_interval_s=0)


@needs_dev_full
def test_a_failed_write_is_raised_by_flush_then_by_every_emit() -> None:
    writer = JsonlTraceWriter(DEV_FULL, flush_interval_s=HOLD_S)
    writer.emit(ev(0))
    with pytest.raises(TraceWriteError) as err:
        writer.flush()
    assert err.value.written == 0 and err.value.path == DEV_FULL
    assert isinstance(err.value.__cause__, OSError) and err.value.__cause__.errno == errno.ENOSPC
    assert str(err.value).startswith(f"trace {DEV_FULL}: writing failed after 0 events (OSError: ")
    with pytest.raises(TraceWriteError):
        writer.emit(ev(1))
    with pytest.raises(TraceWriteError):
        writer.emit(ev(2))
    assert writer.count == 1  # the refused events were not accepted
    writer.close()  # already raised: close does not raise it again


@needs_dev_full
def test_a_failed_write_is_raised_by_the_next_emit_without_flush() -> None:
    writer = JsonlTraceWriter(DEV_FULL)
    writer.emit(ev(0))

    def refused() -> bool:
        try:
            writer.emit(ev(1))
        except TraceWriteError:
            return True
        return False

    poll(refused)
    writer.close()


@needs_dev_full
def test_a_failed_write_is_raised_by_close_once() -> None:
    writer = JsonlTraceWriter(DEV_FULL, flush_interval_s=HOLD_S)
    writer.emit(ev(0))
    with pytest.raises(TraceWriteError) as err:
        writer.close()
    assert err.value.written == 0
    writer.close()


@needs_dev_full
def test_the_recorder_saves_run_json_then_raises_a_failed_trace(tmp_path: Path) -> None:
    recorder = RunRecorder("run", "full", trace_dir=tmp_path)
    (recorder.dir / "events.jsonl").symlink_to(DEV_FULL)
    recorder.trace().emit(ev(0))
    with pytest.raises(TraceWriteError):
        recorder.end("ok")
    assert list_runs(tmp_path)[0]["status"] == "ok"


def test_a_collected_unclosed_writer_drains_and_ends_its_thread(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    writer = JsonlTraceWriter(path, flush_interval_s=HOLD_S)
    for i in range(10):
        writer.emit(ev(i))
    del writer
    gc.collect()
    assert [line["attrs"]["blocks"] for line in poll(lambda: raw_lines(path))] == list(range(10))
    poll(lambda: writer_threads(path) == [])


EXIT_UNCLOSED = (
    "import sys\n"
    "from tether.runtime.tracing import JsonlTraceWriter, TraceEvent\n"
    "writer = JsonlTraceWriter(sys.argv[1], flush_interval_s=60.0)\n"
    "for i in range(100):\n"
    "    writer.emit(TraceEvent('kv', 'p', float(i), None, {'i': i}))\n"
)


def exit_unclosed(path: Path) -> subprocess.CompletedProcess[str]:
    """A process that emits 100 events to ``path`` and exits without closing the writer."""
    argv = [sys.executable, "-c", EXIT_UNCLOSED, str(path)]
    return subprocess.run(argv, timeout=60, capture_output=True, text=True)


def test_process_exit_drains_an_unclosed_writer(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    done = exit_unclosed(path)
    assert (done.returncode, done.stderr) == (0, "")
    assert [line["attrs"]["i"] for line in raw_lines(path)] == list(range(100))


@needs_dev_full
def test_process_exit_prints_a_failed_write() -> None:
    done = exit_unclosed(DEV_FULL)
    assert done.returncode == 0
    assert done.stderr.startswith(f"tether: trace {DEV_FULL}: writing failed after 0 events (OSError: ")
