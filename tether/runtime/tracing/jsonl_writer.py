"""``JsonlTraceWriter``: a trace file written by its own thread, off the emitting (engine, event loop) thread.

    emit(event) ──serialize──▶ queue ──▶ writer thread: sleeps until a line arrives, waits up to the
    flush()     ──barrier────▶ queue     interval for more (a barrier or stop wakes it at once), then
    close()     ──stop───────▶ queue     writes all it took in one call, sets barriers; at stop, closes

The emitting thread serializes the event (so the line is the event as it was when emitted, whatever happens
to its attributes' objects later) and enqueues it; it does no I/O, never waits on the file and never wakes
the writer thread, which wakes about once per ``flush_interval_s`` while events arrive. A line is in the file
at the latest ``flush_interval_s`` after the writer thread woke for it (plus the time to write the batch
before it). The queue is unbounded: emitting never waits for the disk, nor drops an event.

A writer that is neither closed nor garbage collected is closed (drained) at interpreter exit; one that is
collected unclosed writes what it holds and closes its file on its own. Its thread is a daemon, so it never
holds up exit.
"""

from __future__ import annotations

import atexit
import queue
import sys
import threading
import weakref
from pathlib import Path
from typing import IO

import pydantic_core

from tether.runtime.tracing.events import TraceEvent

FLUSH_INTERVAL_S = 0.1
_STOP = None
_OPEN: weakref.WeakSet[JsonlTraceWriter] = weakref.WeakSet()  # writers not yet closed, for sync and exit
_OPEN_LOCK = threading.Lock()


class TraceClosedError(ValueError):
    """An event emitted to a closed writer; ``path`` is its file."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"trace {path} is closed")
        self.path = path


class TraceWriteError(RuntimeError):
    """The writer thread could not write ``path``: the first ``written`` events are in the file, the others
    are not. The cause (an ``OSError``, usually) is ``__cause__``."""

    def __init__(self, path: Path, written: int, cause: BaseException) -> None:
        super().__init__(
            f"trace {path}: writing failed after {written} events ({type(cause).__name__}: {cause}); "
            "the events emitted after them are not written"
        )
        self.path, self.written = path, written


class _Shared:
    """What the writer thread reports to the writer: events written, and the error that stopped it."""

    def __init__(self) -> None:
        self.written = 0
        self.error: BaseException | None = None


class JsonlTraceWriter:
    """Appends events to ``path`` (parent folders are created), one JSON object per line, in ``emit`` order
    (several threads may emit: their order is the order their calls take the writer's lock). Values that are
    not JSON (pydantic models, dates) are converted as pydantic would, others by ``str``.

    Promises:
    - ``emit`` serializes and enqueues; the line is in the file (written to the OS, readable by another
      process) about ``flush_interval_s`` (default 0.1 s) later, at the latest;
    - ``flush()`` returns once every event emitted before it is in the file; ``close()`` likewise, then closes
      the file. ``close`` is idempotent; ``emit`` after it raises ``TraceClosedError`` (a ``ValueError``);
    - a failed write stops the writer: ``emit`` and ``flush`` raise ``TraceWriteError`` from then on, and
      ``close`` raises it unless ``emit`` or ``flush`` already did. Nothing is dropped without that error.
    ``count`` is the number of events ``emit`` accepted.
    """

    def __init__(self, path: str | Path, *, flush_interval_s: float = FLUSH_INTERVAL_S) -> None:
        if flush_interval_s <= 0:
            raise ValueError(f"flush_interval_s must be > 0, got {flush_interval_s}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.count = 0
        self._queue: queue.SimpleQueue[bytes | threading.Event | None] = queue.SimpleQueue()
        self._wake = threading.Event()  # set by flush and close: write now, someone waits
        self._shared = _Shared()
        self._lock = threading.Lock()
        self._closed = False
        self._reported = False
        file = self.path.open("ab", buffering=0)
        self._resolved = self.path.resolve()
        self._thread = threading.Thread(
            target=_write_loop,
            args=(file, self._queue, self._wake, self._shared, flush_interval_s),
            name=f"trace-writer:{self.path}",
            daemon=True,
        )
        self._thread.start()
        self._finalizer = weakref.finalize(self, _abandon, self._queue, self._wake, self._thread)
        self._finalizer.atexit = False  # at exit, _close_open_writers drains and waits instead
        with _OPEN_LOCK:
            _OPEN.add(self)

    def emit(self, event: TraceEvent) -> None:
        line = pydantic_core.to_json(event.to_dict(), fallback=str) + b"\n"
        with self._lock:
            if self._closed:
                raise TraceClosedError(self.path)
            self._raise_failure()
            self._queue.put(line)
            self.count += 1

    def flush(self) -> None:
        """Returns once every event emitted before the call is in the file (a no-op once closed)."""
        if self.sync():
            with self._lock:
                self._raise_failure()

    def sync(self) -> bool:
        """``flush`` that never raises: waits for the lines emitted before it; False if already closed."""
        barrier = threading.Event()
        with self._lock:
            if self._closed:
                return False
            self._queue.put(barrier)
        self._wake.set()
        while not barrier.wait(0.1):
            if not self._thread.is_alive():
                break
        return True

    def close(self) -> None:
        """Writes every event emitted before it, closes the file and ends the writer thread."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
                self._wake.set()
                self._finalizer.detach()
                with _OPEN_LOCK:
                    _OPEN.discard(self)
        self._thread.join()
        with self._lock:
            self._raise_failure()

    def is_writing(self, path: Path) -> bool:
        """Whether this open writer writes the file ``path`` (an already resolved path)."""
        return not self._closed and self._resolved == path

    def _raise_failure(self) -> None:
        """Raises the writer thread's error; call holding ``_lock``."""
        error = self._shared.error
        if error is not None and not (self._closed and self._reported):
            self._reported = True
            raise TraceWriteError(self.path, self._shared.written, error) from error

    def __enter__(self) -> JsonlTraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sync_writers_of(path: str | Path) -> None:
    """Waits until the open writers of this process that write ``path`` have written every event emitted
    so far, so that a reader in the process sees them (``read_trace``). Never raises a writer's error."""
    resolved = Path(path).resolve()
    for writer in _open_writers():
        if writer.is_writing(resolved):
            writer.sync()


def _abandon(
    items: queue.SimpleQueue[bytes | threading.Event | None], wake: threading.Event, thread: threading.Thread
) -> None:
    """A writer collected unclosed: its thread writes what it holds, closes the file and ends. Called by
    the garbage collector, in any thread: ``SimpleQueue.put`` is safe there; ``wake.set`` would deadlock in
    the writer thread itself (collecting while it holds ``wake``'s lock), which finds the stop item in at most
    an interval."""
    items.put(_STOP)
    if threading.get_ident() != thread.ident:
        wake.set()


def _open_writers() -> list[JsonlTraceWriter]:
    with _OPEN_LOCK:
        return list(_OPEN)


def _write_loop(
    file: IO[bytes],
    items: queue.SimpleQueue[bytes | threading.Event | None],
    wake: threading.Event,
    shared: _Shared,
    interval: float,
) -> None:
    """The writer thread's body; should anything unforeseen end it, the writer raises that from then on."""
    try:
        _write_batches(file, items, wake, shared, interval)
    except BaseException as exc:
        shared.error = shared.error or exc
        raise


def _write_batches(
    file: IO[bytes],
    items: queue.SimpleQueue[bytes | threading.Event | None],
    wake: threading.Event,
    shared: _Shared,
    interval: float,
) -> None:
    """Sleeps until an item arrives; after a line, waits up to ``interval`` (less when ``wake`` is set) so
    that the lines emitted meanwhile join it; then takes every item queued and handles them in order: lines
    are written in one call before each barrier (then set) and before the stop item (then the file is
    closed and the thread ends). After a failed write it keeps taking items and writes nothing more."""
    while True:
        first = items.get()
        if isinstance(first, bytes):
            wake.wait(interval)
        wake.clear()  # before taking the batch: a barrier put after this wakes the next round
        batch = [first]
        for _ in range(items.qsize()):  # this thread is the only consumer: they are all there
            batch.append(items.get_nowait())
        lines: list[bytes] = []
        for item in batch:
            if isinstance(item, bytes):
                lines.append(item)
                continue
            _write_lines(file, lines, shared)
            lines = []
            if item is _STOP:
                try:
                    file.close()
                except Exception as exc:  # noqa: BLE001 - reported to the emitting thread as TraceWriteError
                    shared.error = shared.error or exc
                return
            item.set()
        _write_lines(file, lines, shared)


def _write_lines(file: IO[bytes], lines: list[bytes], shared: _Shared) -> None:
    if lines and shared.error is None:
        try:
            _write_all(file, b"".join(lines))
            shared.written += len(lines)
        except Exception as exc:  # noqa: BLE001 - reported to the emitting thread as TraceWriteError
            shared.error = exc


def _write_all(file: IO[bytes], data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = file.write(view)
        if not written:
            raise OSError(f"wrote nothing of {len(view)} bytes")
        view = view[written:]


@atexit.register
def _close_open_writers() -> None:
    """At exit, drain and close every writer still open; a failure is printed, not raised."""
    for writer in _open_writers():
        try:
            writer.close()
        except TraceWriteError as exc:
            print(f"tether: {exc}", file=sys.stderr)
