"""``TraceTail``: reads a JSONL trace that may still be growing, whole lines at a time, from where it stopped.

The page loads a run with one read per trace and then follows it from the byte offsets that read ended at, so
no event is lost or sent twice between the load and the live stream. Lines are parsed as ``read_trace`` does:
a bad complete line is a ``TraceFormatError``; an unterminated last line waits for its newline while the run is
running and, once it has ended (``final``), is read if it parses and dropped (``truncated``) if it does not.
"""

from __future__ import annotations

import json
from pathlib import Path

from tether.runtime.tracing import TraceEvent, TraceFormatError


class TraceTail:
    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = path
        self.offset = offset  # bytes consumed: always just after a newline (or the end of a final read)
        self.line = 0 if offset == 0 else _count_lines(path, offset)
        self.truncated = False

    def read(self, *, final: bool = False) -> list[TraceEvent]:
        """The events of the lines completed since the last read, in file order."""
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        events: list[TraceEvent] = []
        complete_end = data.rfind(b"\n") + 1
        for raw in data[:complete_end].split(b"\n")[:-1]:
            event = self._parse(raw, last=False)
            self.line += 1
            self.offset += len(raw) + 1
            if event is not None:
                events.append(event)
        rest = data[complete_end:]
        if final and rest.strip():
            event = self._parse(rest, last=True)
            self.line += 1
            self.offset += len(rest)
            if event is None:
                self.truncated = True
            else:
                events.append(event)
        return events

    def _parse(self, raw: bytes, *, last: bool) -> TraceEvent | None:
        text = raw.decode("utf-8", errors="replace")
        if not text.strip():
            return None
        try:
            return TraceEvent.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            if last:
                return None
            raise TraceFormatError(str(self.path), self.line + 1, str(exc)) from None
        except ValueError as exc:
            raise TraceFormatError(str(self.path), self.line + 1, str(exc)) from None


def _count_lines(path: Path, offset: int) -> int:
    with path.open("rb") as f:
        return f.read(offset).count(b"\n")
