"""``LocalEngineBackend``: LLM calls on the in-process ``AsyncEngine``, each with the program's
``ProgramHints`` (program id, turn, next tool, remaining turns, last turn) so the engine's program-level
policies can pin the program's KV cache across its tool calls."""

from __future__ import annotations

from runtime.engine.async_engine import AsyncEngine, GenerateRequest
from runtime.engine.config import EngineConfig
from runtime.engine.errors import EngineError
from runtime.engine.sampling_params import SamplingParams
from runtime.engine.sequence import ProgramHints
from runtime.executor.errors import LLMBackendError
from runtime.executor.llm import LLMRequest, LLMResult


def program_hints(request: LLMRequest) -> ProgramHints:
    h = request.hints
    return ProgramHints(
        program_id=request.program_id,
        turn=h.turn,
        next_tool=h.next_tool,
        remaining_turns=h.remaining_turns,
        last_turn=h.last_turn,
    )


class LocalEngineBackend:
    """Implements ``runtime.executor.llm.LLMBackend`` on an ``AsyncEngine``. Chat messages go through the
    tokenizer's chat template (with the generation prompt); a ``prompt`` is used as it is. ``close`` stops the
    engine only when this backend created it (``create``)."""

    name = "local"

    def __init__(self, engine: AsyncEngine, *, owns_engine: bool = False) -> None:
        self.engine = engine
        self._owns = owns_engine

    @classmethod
    async def create(cls, config: EngineConfig) -> LocalEngineBackend:
        return cls(await AsyncEngine.create(config), owns_engine=True)

    async def complete(self, request: LLMRequest) -> LLMResult:
        if request.messages is not None:
            tokenizer = self.engine.engine.tokenizer
            if tokenizer is None:
                raise LLMBackendError(request.node_id, "the engine has no tokenizer to apply a chat template")
            try:
                prompt = tokenizer.apply_chat_template([dict(m) for m in request.messages])
            except ValueError as exc:
                raise LLMBackendError(request.node_id, str(exc)) from None
        else:
            assert request.prompt is not None
            prompt = request.prompt
        try:
            params = SamplingParams(max_tokens=request.max_tokens, temperature=request.temperature)
            out = await self.engine.generate(
                GenerateRequest(prompt, params, request_id=request.request_id, hints=program_hints(request))
            )
        except EngineError as exc:
            raise LLMBackendError(request.node_id, str(exc)) from exc
        comp = out.outputs[0]
        return LLMResult(
            text=comp.text,
            prompt_tokens=len(out.prompt_token_ids),
            completion_tokens=len(comp.token_ids),
            cached_tokens=out.num_cached_tokens,
            finish_reason=comp.finish_reason,
        )

    async def end_program(self, program_id: str) -> None:
        await self.engine.call(lambda e: e.end_program(program_id))

    async def close(self) -> None:
        if self._owns:
            await self.engine.close()
