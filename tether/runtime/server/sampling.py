"""From a request body to the engine's ``SamplingParams``: the OpenAI sampling fields, vLLM's extensions, the
context-length check and structured outputs (``response_format``, a forced ``tool_choice``, vLLM's
``structured_outputs``). Fields the engine cannot honour are refused by name, never ignored."""

from __future__ import annotations

from typing import Any

from tether.runtime.engine.chat import Tool, tool_choice_constraint
from tether.runtime.engine.errors import InvalidRequestError
from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.structured.params import StructuredOutputs
from tether.runtime.server.errors import APIError, bad_request
from tether.runtime.server.protocol import ChatCompletionRequest, CompletionRequest, _Common

MAX_STOP_STRINGS = 16


def check_supported(body: _Common) -> None:
    """400 for fields with values the engine does not implement (n > 1, penalties, logit bias, logprobs, ...)."""
    if body.n not in (None, 1):
        raise bad_request("only n = 1 is supported", param="n", code="unsupported_value")
    for name in ("frequency_penalty", "presence_penalty"):
        if getattr(body, name) not in (None, 0, 0.0):
            raise bad_request(f"'{name}' is not supported (only 0)", param=name, code="unsupported_value")
    if body.logit_bias:
        raise bad_request("'logit_bias' is not supported", param="logit_bias", code="unsupported_value")
    if body.logprobs:
        raise bad_request("'logprobs' is not supported", param="logprobs", code="unsupported_value")
    if isinstance(body, ChatCompletionRequest) and body.top_logprobs:
        raise bad_request("'top_logprobs' is not supported", param="top_logprobs", code="unsupported_value")
    if isinstance(body, CompletionRequest):
        if body.echo:
            raise bad_request("'echo' is not supported", param="echo", code="unsupported_value")
        if body.suffix:
            raise bad_request("'suffix' is not supported", param="suffix", code="unsupported_value")
        if body.best_of not in (None, 1):
            raise bad_request("only best_of = 1 is supported", param="best_of", code="unsupported_value")


def stop_strings(body: _Common) -> tuple[str, ...]:
    stop = body.stop
    stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
    if len(stops) > MAX_STOP_STRINGS:
        raise bad_request(f"at most {MAX_STOP_STRINGS} stop strings", param="stop", code="invalid_value")
    if any(not s for s in stops):
        raise bad_request("stop strings must be non-empty", param="stop", code="invalid_value")
    return stops


def max_tokens_for(
    requested: int | None, prompt_tokens: int, max_model_len: int, param: str, default: int | None = None
) -> int:
    """``requested`` if prompt + output fit the context; when none was requested, ``default`` (the server's
    ``--max-tokens-default``) or the rest of the context, whichever is smaller (``default`` ``None``: the rest
    of the context); 400 ``context_length_exceeded`` naming the limits otherwise."""
    if prompt_tokens >= max_model_len or (
        requested is not None and prompt_tokens + requested > max_model_len
    ):
        asked = prompt_tokens + (requested or 1)
        raise APIError(
            400,
            f"This model's maximum context length is {max_model_len} tokens. However, you requested {asked} "
            f"tokens ({prompt_tokens} in the {param}, {requested or 1} in the completion). Please reduce the "
            f"length of the {param} or the completion.",
            param=param,
            code="context_length_exceeded",
        )
    if requested is not None:
        return requested
    rest = max_model_len - prompt_tokens
    return rest if default is None else min(default, rest)


def response_constraint(response_format: dict[str, Any] | None) -> StructuredOutputs | None:
    """``{"type": "text"}`` -> none; ``json_object`` -> any JSON object; ``json_schema`` -> the schema."""
    if response_format is None:
        return None
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return StructuredOutputs(json_object=True)
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise bad_request(
                "a json_schema response_format needs json_schema.schema (an object)",
                param="response_format.json_schema.schema",
                code="invalid_value",
            )
        return StructuredOutputs(json=schema)
    raise bad_request(
        f"response_format.type must be text, json_object or json_schema, got {kind!r}",
        param="response_format.type",
        code="invalid_value",
    )


def structured_extension(spec: dict[str, Any] | None) -> StructuredOutputs | None:
    """vLLM's ``structured_outputs`` body field: ``{"json" | "regex" | "grammar" | "choice" | "json_object"}``."""
    if spec is None:
        return None
    known = {"json", "regex", "grammar", "choice", "json_object"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise bad_request(
            f"unknown structured_outputs field {unknown[0]!r} (use one of {sorted(known)})",
            param=f"structured_outputs.{unknown[0]}",
            code="invalid_value",
        )
    try:
        return StructuredOutputs(**spec)
    except InvalidRequestError as exc:
        raise bad_request(exc.reason, param=exc.field, code="invalid_value") from None


def chat_constraint(body: ChatCompletionRequest, tools: tuple[Tool, ...]) -> StructuredOutputs | None:
    """At most one of: a forcing ``tool_choice``, ``response_format``, ``structured_outputs``."""
    given: list[tuple[str, StructuredOutputs]] = []
    try:
        forced = tool_choice_constraint(tools, body.tool_choice)
    except InvalidRequestError as exc:
        raise bad_request(exc.reason, param=exc.field, code="invalid_value") from None
    for name, constraint in (
        ("tool_choice", forced),
        ("response_format", response_constraint(body.response_format)),
        ("structured_outputs", structured_extension(body.structured_outputs)),
    ):
        if constraint is not None:
            given.append((name, constraint))
    if len(given) > 1:
        raise bad_request(
            f"{given[0][0]} and {given[1][0]} both constrain the output: give one",
            param=given[1][0],
            code="invalid_value",
        )
    return given[0][1] if given else None


def sampling_params(
    body: _Common,
    max_tokens: int,
    constraint: StructuredOutputs | None,
    extra_stop: tuple[str, ...] = (),
) -> SamplingParams:
    """The engine's params; an ``InvalidRequestError`` of theirs becomes a 400 naming the field."""
    try:
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=1.0 if body.temperature is None else body.temperature,
            top_p=1.0 if body.top_p is None else body.top_p,
            top_k=0 if body.top_k is None else body.top_k,
            seed=body.seed,
            stop=stop_strings(body) + extra_stop,
            stop_token_ids=tuple(body.stop_token_ids or ()),
            ignore_eos=body.ignore_eos,
            min_tokens=body.min_tokens,
            structured_outputs=constraint,
        )
    except InvalidRequestError as exc:
        raise bad_request(exc.reason, param=exc.field, code="invalid_value") from None
