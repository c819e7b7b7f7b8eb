"""What every generating endpoint shares: the engine, its tokenizer, program identity, turn outcomes and
metrics; ``ServerState.generate`` submits one engine request and maps engine errors to API errors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from tether.runtime.engine.async_engine import AsyncEngine, GenerateRequest, StreamDelta
from tether.runtime.engine.errors import EngineError, InvalidRequestError, QueueFullError
from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.sequence import ProgramHints
from tether.runtime.server.errors import APIError, bad_request
from tether.runtime.server.metrics import ServerMetrics
from tether.runtime.server.outcome import TurnOutcomes
from tether.runtime.server.sessions import ProgramTracker

DEFAULT_MAX_TOKENS = 1024  # the output cap of a request that names none (``--max-tokens-default``)


@dataclass(frozen=True)
class ServerConfig:
    """``served_model_names``: the names ``model`` may take (the first is listed by ``/v1/models``);
    ``api_key``: required as ``Authorization: Bearer KEY`` on ``/v1`` when set; ``program_idle_s``: a program
    with no request in flight for this long is ended (its pins released); ``retry_after_s``: the
    ``Retry-After`` of a 503 when the waiting queue is full; ``max_tokens_default``: the output cap of a request
    that sets no ``max_tokens`` / ``max_completion_tokens`` (``None``: up to the end of the context)."""

    served_model_names: tuple[str, ...]
    api_key: str | None = None
    program_idle_s: float = 600.0
    retry_after_s: int = 1
    max_tokens_default: int | None = DEFAULT_MAX_TOKENS


class ServerState:
    def __init__(self, engine: AsyncEngine, config: ServerConfig, outcomes: TurnOutcomes) -> None:
        """``outcomes``: the ``turn_outcome`` the engine was built with (``AsyncEngine.create(...,
        turn_outcome=outcomes.outcome)``): the server registers the tools each chat request offered there."""
        self.engine = engine
        self.config = config
        self.tokenizer = engine.engine.tokenizer
        self.max_model_len = engine.engine.max_model_len
        self.programs = ProgramTracker(config.program_idle_s)
        self.outcomes = outcomes
        self.metrics = ServerMetrics()
        self.shutting_down: Callable[[], bool] = lambda: False  # set by the app (uvicorn's should_exit)
        self.cut_by_shutdown = 0  # requests that ended unfinished once the shutdown had begun

    def check_model(self, model: str) -> None:
        if model not in self.config.served_model_names:
            raise APIError(
                404,
                f"The model {model!r} does not exist; this server serves "
                f"{', '.join(repr(m) for m in self.config.served_model_names)}",
                param="model",
                code="model_not_found",
            )

    def encode(self, text: str, param: str) -> list[int]:
        if self.tokenizer is None:
            raise bad_request("this model has no tokenizer: send token ids", param=param)
        return self.tokenizer.encode(text)

    @staticmethod
    def new_request_id(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex}"

    async def generate(
        self,
        request_id: str,
        prompt_ids: list[int],
        params: SamplingParams,
        hints: ProgramHints | None,
        *,
        stream: bool,
    ) -> AsyncIterator[StreamDelta]:
        """Submit one request; returns its deltas once the first is computed, so queue-full and validation
        errors surface before any response is sent. Without ``stream`` the one delta is the finished output."""
        deltas = self._stream(GenerateRequest(prompt_ids, params, request_id, hints), hints, not stream)
        try:
            first = await anext(deltas)
        except BaseException:
            await deltas.aclose()
            raise
        return _prepend(first, deltas)

    async def _stream(
        self, request: GenerateRequest, hints: ProgramHints | None, final_only: bool
    ) -> AsyncIterator[StreamDelta]:
        pid = hints.program_id if hints is not None else None
        if pid is not None:
            self.programs.started(pid)
            timed = self.outcomes.resumed(pid)
            if timed is not None:
                self.metrics.tool_times.observe(timed)
        last: StreamDelta | None = None
        try:
            async for last in self.engine.stream(request, final_only=final_only):
                yield last
        except QueueFullError as exc:
            raise APIError(
                503,
                f"the server is busy: {exc.num_waiting} requests are waiting; retry later",
                type="server_busy",
                code="queue_full",
                headers={"Retry-After": str(self.config.retry_after_s)},
            ) from None
        except InvalidRequestError as exc:
            raise bad_request(exc.reason, param=exc.field, code="invalid_value") from None
        except EngineError as exc:
            raise APIError(
                500, f"generation failed: {exc}", type="internal_error", code="engine_error"
            ) from None
        finally:
            if (last is None or not last.finished) and self.shutting_down():
                self.cut_by_shutdown += 1
            assert request.request_id is not None
            self.outcomes.drop(request.request_id)
            if pid is not None:
                self.programs.finished(pid)
            if last is not None and last.finished:
                out = last.output
                prompt, generated = len(out.prompt_token_ids), len(out.outputs[0].token_ids)
                self.metrics.usage(prompt, generated, out.num_cached_tokens)
                self.metrics.latency.observe(out.metrics, prompt, generated)

    def shutdown_status(self) -> str:
        """How the run ends: ``"aborted"`` when the shutdown cut requests, else ``"ok"``."""
        return "aborted" if self.cut_by_shutdown else "ok"

    async def end_program(self, pid: str, reason: str) -> bool:
        known = self.programs.forget(pid)
        self.outcomes.ended(pid)
        await self.engine.call(lambda e: e.end_program(pid))
        self.metrics.program_ended(reason)
        return known


async def _prepend(first: StreamDelta, rest: AsyncIterator[StreamDelta]) -> AsyncIterator[StreamDelta]:
    try:
        yield first
        async for delta in rest:
            yield delta
    finally:
        await rest.aclose()  # type: ignore[attr-defined]


def usage_dict(delta: StreamDelta) -> dict:
    out = delta.output
    prompt, completion = len(out.prompt_token_ids), len(out.outputs[0].token_ids)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": out.num_cached_tokens},
    }
