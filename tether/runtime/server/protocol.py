"""Request bodies of the OpenAI API as the server accepts them (pydantic), with vLLM's extension fields and
Tether's ``tether`` object. Unknown top-level fields are ignored, as OpenAI-compatible servers do; a known field
with a bad value is a 400 naming it (``parse_body``)."""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from tether.hints import HintsWireError, ProgramHints
from tether.runtime.server.errors import bad_request


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class _Common(BaseModel):
    """Fields both endpoints share: sampling, identity, streaming and the replay extensions."""

    model_config = ConfigDict(extra="ignore")

    model: str
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int | None = Field(default=None, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    # program identity: vLLM's session_id, OpenAI's prompt_cache_key, or the X-Session-Id header
    session_id: str | None = Field(default=None, min_length=1)
    prompt_cache_key: str | None = Field(default=None, min_length=1)
    # the ``tether`` extension object: ``ProgramHints``'s wire form (``ProgramHints.from_wire``, checked by
    # ``parse_body``): what the client knows about the program under the hints rule; ``turn`` is counted by the
    # server when absent
    tether: dict[str, Any] | None = None
    # vLLM's extensions (replay needs exact output lengths)
    ignore_eos: bool = False
    min_tokens: int = Field(default=0, ge=0)
    top_k: int | None = None
    stop_token_ids: list[int] | None = None
    structured_outputs: dict[str, Any] | None = None


class ChatCompletionRequest(_Common):
    messages: list[dict[str, Any]] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = None


class CompletionRequest(_Common):
    prompt: str | list[int] | list[str] | list[list[int]]
    max_tokens: int | None = Field(default=16, ge=1)
    echo: bool = False
    logprobs: int | None = None
    suffix: str | None = None
    best_of: int | None = None
    return_token_ids: bool = False


M = TypeVar("M", bound=BaseModel)


def parse_body(raw: bytes, model: type[M]) -> M:
    """The request body as ``model``; ``APIError`` 400 for malformed JSON or a bad field (the field's path in
    ``param``, as ``messages[0].role``)."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, an int over 4300 digits, deep nesting
        raise bad_request(f"the body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(doc, dict):
        raise bad_request(f"the body must be a JSON object, got {type(doc).__name__}", code="invalid_json")
    try:
        body = model.model_validate(doc)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        path = field_path(first["loc"])
        if first["type"] == "missing":
            raise bad_request(f"'{path}' is required", param=path, code="missing_field") from None
        value = first.get("input")
        shown = json.dumps(value)[:120] if _jsonable(value) else repr(value)[:120]
        raise bad_request(
            f"'{path}': {first['msg']} (got {shown})", param=path, code="invalid_value"
        ) from None
    ext = getattr(body, "tether", None)
    if ext is not None:
        try:
            ProgramHints.from_wire(ext)
        except HintsWireError as exc:
            path = f"tether.{exc.field}" if exc.field else "tether"
            raise bad_request(f"'{path}': {exc.message}", param=path, code="invalid_value") from None
    return body


def field_path(loc: tuple[Any, ...]) -> str:
    """``("messages", 2, "content")`` -> ``messages[2].content``; pydantic's union branch tags are dropped."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and not _is_branch_tag(part):
            out += f".{part}" if out else part
    return out


def _is_branch_tag(part: str) -> bool:
    return part.startswith(("list[", "dict[", "function-")) or part in ("str", "int", "bool", "float")


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return False
    return True
