"""The client side of a program on ``tether serve``: the ``tether`` object each call carries, and the program's
end (``POST /v1/programs/{id}/end``). The framework adapters (``langgraph``, ``openai_agents``) share it.

What a call carries is what the client knows when it sends it (the hints rule of ``ProgramHints``): the program
id and the turn (the calls of the program this client sent before). The tool a turn calls is known only when the
turn ends: the server reads it from the reply of a request that offered tools (docs/server.md, "What a turn's
end tells the scheduler"), so the adapters send no ``next_tools`` of their own.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Mapping
from typing import Any

import httpx

from tether.hints import ProgramHints


class ProgramEndError(RuntimeError):
    """The server refused to end ``program_id``: an HTTP status other than 200 (and 404, which a server that is
    not Tether's answers)."""

    def __init__(self, program_id: str, status: int, body: str) -> None:
        super().__init__(f"ending program {program_id!r}: HTTP {status}: {body[:300]}")
        self.program_id = program_id
        self.status = status


class ProgramClient:
    """Programs one client runs on the server at ``base_url`` (``.../v1``).

    ``hints(pid)`` is the ``tether`` object of the program's next call and counts the call; ``end(pid)`` /
    ``aend(pid)`` end a program this client has called since it last ended it (else they send nothing) and
    return whether the server knew it. A server that is not Tether's answers the end with 404: nothing to end,
    ``False``. Thread-safe (a graph may call the model from several threads)."""

    def __init__(
        self, base_url: str, api_key: str | None = None, timeout_s: float = 30.0, transport: Any = None
    ) -> None:
        """``transport``: an httpx transport for the end requests, sync and async (``httpx.MockTransport``)."""
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.transport = transport
        self._turns: dict[str, int] = {}  # open program -> calls sent since it (re)started
        self._lock = threading.Lock()

    def hints(self, program_id: str, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The ``tether`` object of ``program_id``'s next call: its id and turn, and the fields of ``given`` (a
        ``tether`` object the caller wrote: its fields win, its ``program_id`` too). Raises ``HintsWireError``
        naming a bad field of ``given``."""
        doc = dict(given or {})
        pid = doc.get("program_id") or program_id
        with self._lock:
            turn = self._turns.get(pid, 0)
            self._turns[pid] = turn + 1
        return ProgramHints.from_wire({"turn": turn, **doc, "program_id": pid}).to_wire()

    def is_open(self, program_id: str) -> bool:
        """Whether this client has called ``program_id`` since it last ended it."""
        with self._lock:
            return program_id in self._turns

    def end(self, program_id: str) -> bool:
        """End ``program_id`` (its pins are released); whether the server knew it."""
        if not self._close(program_id):
            return False
        with httpx.Client(timeout=self.timeout_s, transport=self.transport) as http:
            response = http.post(self._end_url(program_id), headers=self._headers())
        return _known(program_id, response)

    async def aend(self, program_id: str) -> bool:
        """``end`` for an event loop."""
        if not self._close(program_id):
            return False
        async with httpx.AsyncClient(timeout=self.timeout_s, transport=self.transport) as http:
            response = await http.post(self._end_url(program_id), headers=self._headers())
        return _known(program_id, response)

    def _close(self, program_id: str) -> bool:
        with self._lock:
            return self._turns.pop(program_id, None) is not None

    def _end_url(self, program_id: str) -> str:
        return f"{self.base_url}/programs/{urllib.parse.quote(program_id, safe='')}/end"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


def _known(program_id: str, response: httpx.Response) -> bool:
    if response.status_code == 404:
        return False
    if response.status_code != 200:
        raise ProgramEndError(program_id, response.status_code, response.text)
    return bool(response.json().get("known"))
