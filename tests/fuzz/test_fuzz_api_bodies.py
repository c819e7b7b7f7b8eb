"""API bodies: random JSON for ``/v1/chat/completions`` and ``/v1/completions`` is parsed or refused with an
``APIError`` 400 naming the field (``parse_body``); end to end through ``create_app`` and a real tiny-model
``AsyncEngine``, a random body never gets a 500, the app then serves a valid request, and the engine's
``check_integrity()`` holds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.fuzz.counts import FUZZ, SCALE, tried
from tether.runtime.server.errors import APIError
from tether.runtime.server.protocol import ChatCompletionRequest, CompletionRequest, parse_body

pytestmark = pytest.mark.slow  # a hypothesis hunt: hundreds of generated inputs per target

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
COMPLETION = {"model": "tiny", "prompt": "hi", "max_tokens": 2}
CHAT_FIELDS = sorted(set(ChatCompletionRequest.model_fields) | {"tether.turn", "messages.0.role", "unknown"})
COMPLETION_FIELDS = sorted(set(CompletionRequest.model_fields) | {"tether.program_id", "unknown"})


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``doc`` with ``value`` at the dotted ``path`` (unchanged where an earlier mutation removed the path)."""
    doc = json.loads(json.dumps(doc))
    *parents, last = path.split(".")
    target: Any = doc
    try:
        for p in parents:
            target = target[int(p)] if isinstance(target, list) else target.setdefault(p, {})
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    except (AttributeError, IndexError, ValueError, TypeError):
        pass
    return doc


@st.composite
def bodies(draw: st.DrawFn, base: dict[str, Any], fields: list[str]) -> bytes:
    kind = draw(st.sampled_from(["field", "field", "field", "drop", "doc", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=40))
    if kind == "doc":
        return json.dumps(draw(json_values)).encode()
    doc = base
    if kind == "drop":
        doc = {k: v for k, v in base.items() if k != draw(st.sampled_from(sorted(base)))}
    for _ in range(draw(st.integers(1, 2))):
        doc = _set(doc, draw(st.sampled_from(fields)), draw(json_values))
    return json.dumps(doc).encode()


def _check_parse(raw: bytes, model: type) -> None:
    tried("api_body")
    try:
        parse_body(raw, model)
    except APIError as exc:
        assert exc.status == 400 and exc.message, exc
        if exc.code in ("missing_field", "invalid_value"):
            assert exc.param and exc.param.split(".")[0].split("[")[0] in model.model_fields, exc


@settings(FUZZ, max_examples=200 * SCALE)
@given(bodies(CHAT, CHAT_FIELDS))
@example(b"[" * 100_000)  # was an uncaught RecursionError in parse_body
@example(b'{"model": "tiny", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}")
@example(b"\xff\xfe")
@example(
    b'{"model": "tiny", "messages": [{"role": "user"}], "seed": ' + b"9" * 5000 + b"}"
)  # int over 4300 digits
def test_chat_bodies(raw: bytes) -> None:
    _check_parse(raw, ChatCompletionRequest)


@settings(FUZZ, max_examples=150 * SCALE)
@given(bodies(COMPLETION, COMPLETION_FIELDS))
def test_completion_bodies(raw: bytes) -> None:
    _check_parse(raw, CompletionRequest)


# -- end to end ------------------------------------------------------------------------------------------------


class _Server:
    def __init__(self) -> None:
        from tether.runtime.engine.async_engine import AsyncEngine
        from tether.runtime.engine.config import EngineConfig
        from tether.runtime.server.app import create_app
        from tether.runtime.server.outcome import TurnOutcomes
        from tether.runtime.server.serving import ServerConfig

        self.loop = asyncio.new_event_loop()
        config = EngineConfig(model="tiny", num_kv_blocks=64, max_model_len=256, max_num_batched_tokens=256)
        outcomes = TurnOutcomes()
        self.engine = self.loop.run_until_complete(AsyncEngine.create(config, turn_outcome=outcomes.outcome))
        app = create_app(self.engine, ServerConfig(("tiny",)), outcomes)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://test"
        )

    def post(self, path: str, raw: bytes) -> httpx.Response:
        headers = {"content-type": "application/json"}
        return self.loop.run_until_complete(
            asyncio.wait_for(self.client.post(path, content=raw, headers=headers), 60)
        )

    def get(self, path: str) -> httpx.Response:
        return self.loop.run_until_complete(self.client.get(path))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.engine.close())
        self.loop.close()


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


def _check_e2e(server: _Server, path: str, raw: bytes, valid: dict[str, Any]) -> None:
    tried("api_e2e")
    r = server.post(path, raw)
    assert r.status_code < 500, (raw, r.status_code, r.text)
    if r.status_code >= 400:
        err = r.json()["error"]
        assert err["message"] and err["type"], err
        if err.get("code") in ("missing_field", "invalid_value"):
            assert err["param"], err
    ok = server.post(path, json.dumps(valid).encode())
    assert ok.status_code == 200, ok.text
    integrity = server.get("/integrity")
    assert integrity.status_code == 200, integrity.text


@settings(FUZZ, max_examples=40 * SCALE)
@given(bodies(CHAT, CHAT_FIELDS))
@example(b"[" * 100_000)
@example(json.dumps({**CHAT, "seed": 2**70}).encode())  # was a 500: torch's manual_seed overflowed
@example(json.dumps({**CHAT, "top_p": 1e-300}).encode())  # was a 500: the nucleus rounded to no token
def test_chat_end_to_end(server: _Server, raw: bytes) -> None:
    _check_e2e(server, "/v1/chat/completions", raw, CHAT)


@settings(FUZZ, max_examples=40 * SCALE)
@given(bodies(COMPLETION, COMPLETION_FIELDS))
@example(json.dumps({**COMPLETION, "seed": -(2**64)}).encode())
@example(json.dumps({**COMPLETION, "top_p": 1e-50, "stream": True}).encode())
def test_completions_end_to_end(server: _Server, raw: bytes) -> None:
    _check_e2e(server, "/v1/completions", raw, COMPLETION)
