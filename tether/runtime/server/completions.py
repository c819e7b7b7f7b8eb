"""``POST /v1/completions``: a text prompt or token ids (one prompt, or a batch of them without ``stream``).

For replay, vLLM's extensions: ``ignore_eos``, ``min_tokens``, and ``return_token_ids`` (each choice carries
``prompt_token_ids`` and the generated ``token_ids``, so a client can rebuild the exact context of the next
turn)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from tether.runtime.engine.async_engine import StreamDelta
from tether.runtime.engine.structured.params import StructuredOutputs
from tether.runtime.server.errors import bad_request
from tether.runtime.server.protocol import CompletionRequest
from tether.runtime.server.sampling import (
    check_supported,
    max_tokens_for,
    sampling_params,
    structured_extension,
)
from tether.runtime.server.serving import ServerState, usage_dict
from tether.runtime.server.sessions import SESSION_HEADER


def _prompts(state: ServerState, prompt: Any) -> list[list[int]]:
    """Token-id lists, one per prompt; ``prompt`` is a string, token ids, or a list of either."""
    if isinstance(prompt, str):
        return [state.encode(prompt, "prompt")] if prompt else _empty("prompt")
    if not prompt:
        return _empty("prompt")
    if all(isinstance(t, int) for t in prompt):
        return [list(prompt)]
    out = []
    for i, p in enumerate(prompt):
        if not p:
            _empty(f"prompt[{i}]")
        out.append(state.encode(p, f"prompt[{i}]") if isinstance(p, str) else list(p))
    return out


def _empty(param: str) -> list[list[int]]:
    raise bad_request("the prompt is empty", param=param, code="invalid_value")


async def completion(state: ServerState, body: CompletionRequest, headers: dict[str, str]):
    check_supported(body)
    state.check_model(body.model)
    prompts = _prompts(state, body.prompt)
    if body.stream and len(prompts) > 1:
        raise bad_request("stream takes one prompt", param="prompt", code="unsupported_value")
    constraint: StructuredOutputs | None = structured_extension(body.structured_outputs)
    runs = []
    for i, ids in enumerate(prompts):
        param = "prompt" if len(prompts) == 1 else f"prompt[{i}]"
        max_tokens = max_tokens_for(
            body.max_tokens, len(ids), state.max_model_len, param, state.config.max_tokens_default
        )
        runs.append((ids, sampling_params(body, max_tokens, constraint)))
    hints = state.programs.hints(body, headers.get(SESSION_HEADER))
    head = {"id": state.new_request_id("cmpl"), "created": int(time.time()), "model": body.model}
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        deltas = await state.generate(head["id"], *runs[0], hints, stream=True)
        return _chunks(head, deltas, include_usage, body.return_token_ids)
    finals = await asyncio.gather(
        *(_final(state, f"{head['id']}-{i}", ids, params, hints) for i, (ids, params) in enumerate(runs))
    )
    choices = [_choice(i, d, body.return_token_ids) for i, d in enumerate(finals)]
    usages = [usage_dict(d) for d in finals]
    usage = {k: sum(u[k] for u in usages) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    usage["prompt_tokens_details"] = {
        "cached_tokens": sum(u["prompt_tokens_details"]["cached_tokens"] for u in usages)
    }
    return {**head, "object": "text_completion", "choices": choices, "usage": usage}


async def _final(state: ServerState, rid: str, ids: list[int], params, hints) -> StreamDelta:
    last: StreamDelta | None = None
    async for last in await state.generate(rid, ids, params, hints, stream=False):  # noqa: B007
        pass
    assert last is not None
    return last


def _choice(index: int, delta: StreamDelta, with_ids: bool) -> dict[str, Any]:
    comp = delta.output.outputs[0]
    choice: dict[str, Any] = {
        "index": index,
        "text": comp.text,
        "logprobs": None,
        "finish_reason": comp.finish_reason,
    }
    if with_ids:
        choice["prompt_token_ids"] = list(delta.output.prompt_token_ids)
        choice["token_ids"] = list(comp.token_ids)
    return choice


async def _chunks(
    head: dict[str, Any], deltas: AsyncIterator[StreamDelta], include_usage: bool, with_ids: bool
) -> AsyncIterator[dict[str, Any]]:
    base = {**head, "object": "text_completion"}
    extra = {"usage": None} if include_usage else {}
    last: StreamDelta | None = None
    try:
        async for last in deltas:
            choice: dict[str, Any] = {
                "index": 0,
                "text": last.text,
                "logprobs": None,
                "finish_reason": last.finish_reason if last.finished else None,
            }
            if with_ids:
                choice["token_ids"] = list(last.token_ids)
            yield {**base, "choices": [choice], **extra}
    finally:
        await deltas.aclose()  # type: ignore[attr-defined]
    if include_usage and last is not None:
        yield {**base, "choices": [], "usage": usage_dict(last)}
