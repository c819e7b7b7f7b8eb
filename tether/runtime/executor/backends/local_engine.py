"""``LocalEngineBackend``: LLM calls on the in-process ``AsyncEngine``, each with the program's
``ProgramHints`` (program id, turn, next tools, remaining turns, last turn, prefix group) so the engine's
program-level policies can pin the program's KV cache across its tool calls.

Chat requests go through the tokenizer's chat template with the offered ``tools`` (assistant ``tool_calls``
and ``tool`` results render as the template has them), so a multi-turn agent is one growing prompt prefix.
Replies to a request that offers tools are parsed for ``<tool_call>`` blocks (``parse_tool_calls``) into
``LLMResult.tool_calls``, as the OpenAI backend returns them. A forcing ``tool_choice`` or a ``grammar``
becomes the request's ``StructuredOutputs``. With ``readers`` (the ``TurnReaders`` its engine was built with as
``turn_outcome``: ``create`` and ``Deployment.start_local_engine`` do so) each request's reader
(``LLMRequest.outcome``, and its ``<tool_call>`` blocks when it offered tools) tells the engine, when the turn
ends, which tool the program now waits for.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from tether.runtime.engine.async_engine import AsyncEngine, GenerateRequest
from tether.runtime.engine.chat import ToolCallParseError, parse_tool_calls, tool_choice_constraint
from tether.runtime.engine.config import EngineConfig
from tether.runtime.engine.errors import EngineError
from tether.runtime.engine.outputs import RequestOutput
from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.sequence import ProgramHints
from tether.runtime.engine.structured.params import StructuredOutputs
from tether.runtime.executor.backends.turn_readers import TurnReaders, request_reader
from tether.runtime.executor.errors import LLMBackendError, LLMOutputError
from tether.runtime.executor.llm import LLMDelta, LLMRequest, LLMResult, LLMToolCall, Usage
from tether.tools.durations import ToolDurationStats
from tether.tools.store import deployment_stats, save_deployment_stats


def program_hints(request: LLMRequest) -> ProgramHints:
    """The request's hints, whole (next tools, prefix group and all), with the program id added."""
    return replace(request.hints, program_id=request.program_id)


class LocalEngineBackend:
    """Implements ``tether.runtime.executor.llm.StreamingLLMBackend`` on an ``AsyncEngine``. Chat messages go
    through the tokenizer's chat template (with the generation prompt and the tools); a ``prompt`` is used as
    it is. ``close`` stops the engine only when this backend created it (``create``). ``readers``: the
    engine's ``turn_outcome`` (see the module's docstring); ``None`` for an engine built without one."""

    name = "local"

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        owns_engine: bool = False,
        saves_stats: bool = False,
        readers: TurnReaders | None = None,
    ) -> None:
        self.engine = engine
        self._owns = owns_engine
        self._saves_stats = saves_stats
        self.readers = readers

    @classmethod
    async def create(cls, config: EngineConfig, *, tool_stats: ToolDurationStats | None = None) -> LocalEngineBackend:
        """An engine of its own reading ``tool_stats``, by default the deployment's (``deployment_stats()``, saved
        back by ``close``); the tool runner writes them."""
        saves = tool_stats is None
        stats = deployment_stats() if tool_stats is None else tool_stats
        readers = TurnReaders()
        engine = await AsyncEngine.create(config, tool_stats=stats, turn_outcome=readers.outcome)
        return cls(engine, owns_engine=True, saves_stats=saves, readers=readers)

    def generate_request(self, request: LLMRequest) -> GenerateRequest:
        """The engine request: the rendered prompt, sampling (with the constraint) and the program hints.
        ``LLMBackendError`` names the node for a conversation or constraint the engine rejects."""
        try:
            if request.messages is not None:
                tokenizer = self.engine.engine.tokenizer
                if tokenizer is None:
                    raise LLMBackendError(
                        request.node_id, "the engine has no tokenizer to apply a chat template"
                    )
                prompt = tokenizer.apply_chat_template(
                    [dict(m) for m in request.messages], tools=list(request.tools) or None
                )
            else:
                assert request.prompt is not None
                prompt = request.prompt
            constraint: StructuredOutputs | None = None
            if request.grammar is not None:
                constraint = StructuredOutputs(grammar=request.grammar)
            elif request.tool_choice is not None:
                constraint = tool_choice_constraint(list(request.tools), request.tool_choice)
            params = SamplingParams(
                max_tokens=request.max_tokens, temperature=request.temperature, structured_outputs=constraint
            )
        except (ValueError, EngineError) as exc:  # InvalidRequestError is an EngineError
            raise LLMBackendError(request.node_id, str(exc)) from None
        return GenerateRequest(prompt, params, request_id=request.request_id, hints=program_hints(request))

    def _expect(self, request: LLMRequest) -> None:
        """Register the request's reader for its turn's end (with ``readers``)."""
        reader = request_reader(request.tools, request.outcome) if self.readers is not None else None
        if reader is not None:
            assert self.readers is not None
            self.readers.expect(request.request_id, reader)

    def _drop(self, request: LLMRequest) -> None:
        if self.readers is not None:
            self.readers.drop(request.request_id)

    async def complete(self, request: LLMRequest) -> LLMResult:
        generate = self.generate_request(request)
        self._expect(request)
        try:
            out = await self.engine.generate(generate)
        except EngineError as exc:
            raise LLMBackendError(request.node_id, str(exc)) from exc
        finally:
            self._drop(request)
        return self.result(request, out)

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMDelta]:
        """The reply as it is generated: one ``LLMDelta`` per engine step with new text; the last carries the
        result. Closing the iterator early aborts the request in the engine."""
        generate = self.generate_request(request)
        self._expect(request)
        try:
            async for delta in self.engine.stream(generate):
                if delta.finished:
                    yield LLMDelta(delta.text, self.result(request, delta.output), request.attempt)
                elif delta.text:
                    yield LLMDelta(delta.text, None, request.attempt)
        except EngineError as exc:
            raise LLMBackendError(request.node_id, str(exc)) from exc
        finally:
            self._drop(request)

    def result(self, request: LLMRequest, out: RequestOutput) -> LLMResult:
        """The ``LLMResult`` of a finished engine request; with tools offered, ``<tool_call>`` blocks become
        ``tool_calls`` and ``text`` the content around them, stripped (``LLMOutputError`` for a malformed block)."""
        comp = out.outputs[0]
        text, calls = comp.text, ()
        if request.tools:
            try:
                parsed = parse_tool_calls(comp.text, list(request.tools))
            except ToolCallParseError as exc:
                raise LLMOutputError(request.node_id, f"tool call: {exc}", comp.text) from None
            if parsed.tool_calls:  # without calls the text stays as generated
                text = parsed.content or ""
            calls = tuple(LLMToolCall(c.name, _loads(c.arguments), c.id) for c in parsed.tool_calls)
        usage = Usage(
            prompt_tokens=len(out.prompt_token_ids),
            completion_tokens=len(comp.token_ids),
            cached_tokens=out.num_cached_tokens,
        )
        return LLMResult(
            text=text,
            usage=usage,
            finish_reason=comp.finish_reason,
            tool_calls=calls,
        )

    async def end_program(self, program_id: str) -> None:
        await self.engine.call(lambda e: e.end_program(program_id))

    async def close(self) -> None:
        if self._owns:
            await self.engine.close()
        if self._saves_stats:
            save_deployment_stats()


def _loads(arguments: str) -> dict[str, Any]:
    value = json.loads(arguments)
    assert isinstance(value, dict)  # parse_tool_calls checked it is an object
    return value
