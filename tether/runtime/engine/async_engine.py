"""The asyncio face of the engine. The step loop runs in a background thread; coroutines submit requests and
receive tokens through thread-safe hand-offs, so the event loop (tool calls, the server) never waits on a
forward pass.

    event loop                         engine thread
    ──────────                         ─────────────
    stream(req) ── command queue ───►  add_request (validation errors go back to the caller)
                                       step() ... step()
    async for delta  ◄── call_soon_threadsafe(queue.put_nowait, snapshot)
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

from tether.runtime.engine.builder import build_engine
from tether.runtime.engine.config import EngineConfig
from tether.runtime.engine.errors import EngineError
from tether.runtime.engine.llm_engine import LLMEngine
from tether.runtime.engine.outputs import RequestOutput
from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.sequence import ProgramHints, Sequence, TurnOutcome
from tether.tools.durations import ToolDurationStats

log = logging.getLogger(__name__)
T = TypeVar("T")
PIN_TIMER_MIN_S, PIN_TIMER_MAX_S = 0.005, 0.25  # idle wake-ups for pin timers (a parked pin's prefetch is due
# before its expiry: the cap keeps the program layer's clock-driven actions within a quarter second)


@dataclass(frozen=True)
class GenerateRequest:
    prompt: str | list[int]
    params: SamplingParams = SamplingParams()
    request_id: str | None = None
    hints: ProgramHints | None = None


@dataclass(frozen=True)
class StreamDelta:
    """What one step added to a request: new token ids and text, plus the whole snapshot so far."""

    request_id: str
    token_ids: tuple[int, ...]
    text: str
    finished: bool
    output: RequestOutput

    @property
    def finish_reason(self) -> str | None:
        return self.output.outputs[0].finish_reason


class _Stream:
    def __init__(self, loop: asyncio.AbstractEventLoop, final_only: bool = False) -> None:
        self.loop = loop
        self.final_only = final_only  # deliver the finished output alone: no wake-up of the loop per step
        self.queue: asyncio.Queue[RequestOutput] = asyncio.Queue()

    def push(self, out: RequestOutput) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, out)


class AsyncEngine:
    """``await AsyncEngine.create(EngineConfig(...))`` or ``AsyncEngine(build_engine(...))``; then
    ``await engine.generate(GenerateRequest(...))`` or ``async for delta in engine.stream(...)``.
    ``await engine.close()`` stops the thread (requests still in flight are aborted)."""

    def __init__(
        self, engine: LLMEngine | None = None, *, _build: Callable[[], LLMEngine] | None = None
    ) -> None:
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._streams: dict[str, _Stream] = {}
        self._stopping = False
        self._built = threading.Event()
        self._build_error: BaseException | None = None
        if engine is not None:
            self.engine = engine
            self._built.set()
        self._thread = threading.Thread(target=self._run, args=(_build,), name="tether-engine", daemon=True)
        self._thread.start()

    @classmethod
    async def create(
        cls,
        config: EngineConfig,
        *,
        tool_stats: ToolDurationStats | None = None,
        turn_outcome: Callable[[Sequence], TurnOutcome] | None = None,
    ) -> AsyncEngine:
        """Loads the model on the engine thread itself, off the event loop (``tool_stats``, ``turn_outcome``: as
        ``build_engine`` takes them). One thread runs every torch call:
        on CPU, OpenMP work from a second thread (a loader thread, then the step thread) made steps about 2x
        slower on the 2-core machine (``bench/engine_threads.py``), as the two threads' OpenMP pools compete."""
        engine = cls(_build=lambda: build_engine(config, tool_stats=tool_stats, turn_outcome=turn_outcome))
        await asyncio.to_thread(engine._built.wait)
        if engine._build_error is not None:
            await asyncio.to_thread(engine._thread.join)
            raise engine._build_error
        return engine

    # -- event-loop side ------------------------------------------------------------------------------------
    async def generate(self, request: GenerateRequest) -> RequestOutput:
        """The finished output. Raises ``InvalidRequestError`` for a bad request, ``EngineError`` when the
        step that ran it failed."""
        last: StreamDelta | None = None
        async for last in self.stream(request, final_only=True):  # noqa: B007
            pass
        assert last is not None
        return last.output

    async def stream(
        self, request: GenerateRequest, *, final_only: bool = False
    ) -> AsyncIterator[StreamDelta]:
        """One ``StreamDelta`` per step that added tokens; with ``final_only`` just the last one (whose
        ``token_ids`` / ``text`` are then the whole output): the engine thread wakes the event loop once per
        request instead of once per step, which matters when both threads share two cores."""
        if self._stopping:
            raise EngineError("engine is closed")
        loop = asyncio.get_running_loop()
        admitted: asyncio.Future[str] = loop.create_future()
        stream = _Stream(loop, final_only)
        self._submit(("add", request, admitted, stream))
        rid = await admitted
        seen_tokens, seen_text, finished = 0, 0, False
        try:
            while not finished:
                out = await stream.queue.get()
                finished = out.finished
                if out.error:
                    raise EngineError(f"request {rid} failed: {out.error}")
                comp = out.outputs[0]
                yield StreamDelta(rid, comp.token_ids[seen_tokens:], comp.text[seen_text:], finished, out)
                seen_tokens, seen_text = len(comp.token_ids), len(comp.text)
        finally:
            if not finished:
                self._submit(("abort", rid))

    async def abort(self, request_id: str) -> None:
        self._submit(("abort", request_id))

    async def call(self, fn: Callable[[LLMEngine], T]) -> T:
        """Run ``fn(engine)`` on the engine thread between steps (inspection, integrity checks)."""
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._submit(("call", fn, fut))
        return await fut

    async def check_integrity(self) -> None:
        await self.call(LLMEngine.check_integrity)

    async def close(self) -> None:
        self._stopping = True
        self._wake.set()
        await asyncio.to_thread(self._thread.join)

    def _submit(self, command: tuple) -> None:
        self._commands.put(command)
        self._wake.set()

    # -- engine-thread side ---------------------------------------------------------------------------------
    def _run(self, build: Callable[[], LLMEngine] | None) -> None:
        if build is not None:
            try:
                self.engine = build()
            except BaseException as exc:  # noqa: BLE001 - handed to create()
                self._build_error = exc
                self._built.set()
                return
            self._built.set()
        self._loop()

    def _loop(self) -> None:
        while True:
            self._wake.clear()
            self._drain_commands()
            if self._stopping:
                break
            if not self.engine.has_unfinished():
                timer = self._next_timer()
                if not self._wake.wait(timeout=timer) and timer is not None:
                    self.engine.step()  # no request runs: only the program layer's timers (expiry, prefetch)
                continue
            try:
                outputs = self.engine.step()
            except Exception as exc:  # noqa: BLE001 - the requests fail, the thread keeps serving
                log.exception("engine step failed")
                outputs = self.engine.fail_all(exc)
            for out in outputs:
                self._deliver(out)
        for rid in list(self._streams):
            out = self.engine.abort(rid)
            if out is not None:
                self._deliver(out)

    def _next_timer(self) -> float | None:
        """Seconds until the earliest pin expiry while the engine is idle (``None``: no pin, sleep until a
        command), so pins expire and parked programs are prefetched on time even when no request arrives."""
        expiry = self.engine.next_timer()
        if expiry is None:
            return None
        due = expiry - self.engine.clock()
        return min(max(due, PIN_TIMER_MIN_S), PIN_TIMER_MAX_S)

    def _drain_commands(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            if command[0] == "add":
                self._add(*command[1:])
            elif command[0] == "call":
                self._call(*command[1:])
            else:
                out = self.engine.abort(command[1])
                if out is not None:
                    self._deliver(out)

    def _add(self, request: GenerateRequest, admitted: asyncio.Future, stream: _Stream) -> None:
        try:
            seq = self.engine.add_request(
                request.prompt, request.params, request_id=request.request_id, hints=request.hints
            )
        except Exception as exc:  # noqa: BLE001 - handed back to the caller
            stream.loop.call_soon_threadsafe(_set_exception, admitted, exc)
            return
        self._streams[seq.request_id] = stream
        stream.loop.call_soon_threadsafe(self._admitted, admitted, seq.request_id)

    def _admitted(self, fut: asyncio.Future, request_id: str) -> None:
        """On the event loop: hand the id to the caller, or abort if the caller stopped waiting."""
        if fut.cancelled():
            self._submit(("abort", request_id))
        elif not fut.done():
            fut.set_result(request_id)

    def _call(self, fn: Callable[[LLMEngine], object], fut: asyncio.Future) -> None:
        loop = fut.get_loop()
        try:
            result = fn(self.engine)
        except Exception as exc:  # noqa: BLE001 - handed back to the caller
            loop.call_soon_threadsafe(_set_exception, fut, exc)
        else:
            loop.call_soon_threadsafe(_set_result, fut, result)

    def _deliver(self, out: RequestOutput) -> None:
        stream = self._streams.get(out.request_id)
        if stream is None:
            return
        if out.finished:
            del self._streams[out.request_id]
        elif stream.final_only:
            return
        stream.push(out)


def _set_result(fut: asyncio.Future, value: object) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future, exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
