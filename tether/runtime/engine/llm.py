"""The offline API vLLM users know: ``LLM(model=...).generate(prompts, SamplingParams(...))``."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from collections.abc import Sequence as Seq
from typing import Any

from tether.runtime.engine.builder import build_engine
from tether.runtime.engine.chat.tools import Tool, normalize_tools, tool_choice_constraint
from tether.runtime.engine.config import EngineConfig
from tether.runtime.engine.errors import EngineError, InvalidRequestError
from tether.runtime.engine.outputs import RequestOutput
from tether.runtime.engine.sampling_params import SamplingParams

Prompt = str | Seq[int]
_request_ids = itertools.count()


class LLM:
    """``LLM(model="tiny" | "/path/to/ckpt", device="cpu" | "cuda", dtype=None, block_size=16,
    num_kv_blocks=None, max_num_batched_tokens=2048, ...)``; keyword arguments are ``EngineConfig`` fields."""

    def __init__(self, model: str = "tiny", **kwargs) -> None:
        self.engine = build_engine(EngineConfig(model=model, **kwargs))
        self.tokenizer = self.engine.tokenizer

    def generate(
        self,
        prompts: Prompt | list[Prompt],
        sampling_params: SamplingParams | list[SamplingParams] | None = None,
    ) -> list[RequestOutput]:
        """Runs every prompt to completion, batched together; one ``RequestOutput`` per prompt, in order.

        Prompts are text or token-id lists. All are validated before any runs: an invalid one raises
        ``InvalidRequestError`` naming its index and field, and none of the batch is left in the engine.
        """
        batch = _as_batch(prompts)
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(batch)
        if len(params) != len(batch):
            raise InvalidRequestError(
                None, "sampling_params", f"{len(params)} sampling params for {len(batch)} prompts"
            )
        ids: list[str] = []
        try:
            for prompt, p in zip(batch, params):
                ids.append(
                    self.engine.add_request(prompt, p, request_id=f"llm-{next(_request_ids)}").request_id
                )
        except InvalidRequestError as exc:
            for rid in ids:
                self.engine.abort(rid)
            raise InvalidRequestError(exc.request_id, exc.field, f"prompt {len(ids)}: {exc.reason}") from exc
        return self._run(ids)

    def _run(self, ids: list[str]) -> list[RequestOutput]:
        wanted = set(ids)
        done: dict[str, RequestOutput] = {}
        while len(done) < len(ids):
            if not self.engine.has_unfinished():
                raise EngineError(f"engine idle with {len(ids) - len(done)} requests unfinished")
            for out in self.engine.step():
                if out.finished and out.request_id in wanted:
                    done[out.request_id] = out
        failed = [o for o in done.values() if o.error]
        if failed:
            raise EngineError(f"request {failed[0].request_id} failed: {failed[0].error}")
        return [done[rid] for rid in ids]

    def chat(
        self,
        messages: list[dict[str, Any]] | list[list[dict[str, Any]]],
        sampling_params: SamplingParams | list[SamplingParams] | None = None,
        tools: Seq[Mapping[str, Any] | Tool] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
    ) -> list[RequestOutput]:
        """Renders each conversation (one, or a list of them) with the model's chat template, the generation
        prompt and ``tools`` (OpenAI tool dicts), then generates; one ``RequestOutput`` per conversation.

        ``tool_choice``: ``None`` / ``"auto"`` / ``"none"`` leave the output free; ``"required"`` or
        ``{"type": "function", "function": {"name": X}}`` force one call (any tool, or X) by setting
        ``structured_outputs`` on a copy of the sampling params (``tool_choice_constraint``); sampling params
        that already set ``structured_outputs`` are then an ``InvalidRequestError`` naming ``tool_choice``.
        Read calls out of the text with ``tether.runtime.engine.chat.parse_tool_calls``.
        """
        conversations = messages if messages and isinstance(messages[0], list) else [messages]
        specs = normalize_tools(tools)
        constraint = tool_choice_constraint(specs, tool_choice)
        params = (
            sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(conversations)
        )
        if constraint is not None:
            if any(p is not None and p.structured_outputs is not None for p in params):
                raise InvalidRequestError(
                    None,
                    "tool_choice",
                    "a forced tool choice sets structured_outputs; the sampling params set it",
                )
            params = [
                dataclasses.replace(p or SamplingParams(), structured_outputs=constraint) for p in params
            ]
        prompts = [
            self.tokenizer.apply_chat_template(c, add_generation_prompt=True, tools=specs or None)
            for c in conversations
        ]
        return self.generate(prompts, params)


def _as_batch(prompts: Prompt | list[Prompt]) -> list[Prompt]:
    if isinstance(prompts, str):
        return [prompts]
    if isinstance(prompts, (list, tuple)) and prompts and all(isinstance(t, int) for t in prompts):
        return [list(prompts)]
    return list(prompts)
