"""``OpenAIBackend`` on the ``openai`` SDK against a scripted server on loopback (``script_server``): retries
that wait what ``Retry-After`` / ``retry-after-ms`` ask, streaming (text, usage, tool calls in pieces), and
every failure as a typed error naming the node, the request and the field at fault."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.executor.script_server import Reply, ScriptServer, chat_chunk, chat_reply, usage_chunk
from tether.runtime.executor import (
    LLMBackendError,
    LLMDelta,
    LLMRequest,
    LLMServerError,
    LLMTimeoutError,
    StreamingLLMBackend,
    stream_llm,
)
from tether.runtime.executor.backends.openai import OpenAIBackend

CHAT = LLMRequest("prog", "plan", messages=({"role": "user", "content": "hi"},), max_tokens=7, attempt=2)
OVERLOADED = {
    "error": {"message": "the server is busy", "type": "server_busy", "param": None, "code": "queue_full"}
}


@pytest.fixture
def script() -> Iterator[list[ScriptServer]]:
    servers: list[ScriptServer] = []
    yield servers
    for s in servers:
        s.close()


def serve(script: list[ScriptServer], *replies: Reply) -> ScriptServer:
    server = ScriptServer(list(replies))
    script.append(server)
    return server


async def collect(deltas: AsyncIterator[LLMDelta]) -> list[LLMDelta]:
    return [d async for d in deltas]


async def test_a_503_is_retried_after_its_retry_after_seconds(script: list[ScriptServer]) -> None:
    server = serve(script, Reply(503, OVERLOADED, {"Retry-After": "1"}), Reply(body=chat_reply("fine")))
    backend = OpenAIBackend(server.url, "m")
    result = await backend.complete(CHAT)
    await backend.close()
    assert (result.text, result.finish_reason, result.prompt_tokens) == ("fine", "stop", 5)
    first, second = server.seen
    assert second.at - first.at >= 1.0  # the SDK's own backoff would have waited 0.375-0.5 s
    assert [s.headers["x-stainless-retry-count"] for s in server.seen] == ["0", "1"]
    assert first.body == second.body and second.headers["x-request-id"] == "prog/plan#2"


async def test_a_429_honours_retry_after_ms_and_a_stream_is_retried_too(script: list[ScriptServer]) -> None:
    events = (chat_chunk("ok", "stop"),)
    server = serve(
        script,
        Reply(429, {"error": {"message": "slow down"}}, {"retry-after-ms": "700"}),
        Reply(events=events),
    )
    backend = OpenAIBackend(server.url, "m")
    deltas = await collect(stream_llm(backend, CHAT))
    await backend.close()
    assert [(d.text, d.result is not None) for d in deltas] == [("ok", False), ("", True)]
    assert 0.7 <= server.seen[1].at - server.seen[0].at < 1.0  # milliseconds, not the seconds header


async def test_retries_run_out_into_a_server_error_naming_the_request(script: list[ScriptServer]) -> None:
    busy = Reply(503, OVERLOADED, {"retry-after-ms": "10"})
    server = serve(script, busy, busy, busy, busy)
    backend = OpenAIBackend(server.url, "m", max_retries=2)
    with pytest.raises(LLMServerError) as info:
        await backend.complete(CHAT)
    await backend.close()
    err = info.value
    assert len(server.seen) == 3
    assert (err.status, err.code, err.retries, err.node) == (503, "queue_full", 2, "plan")
    assert str(err) == (
        f"node 'plan': LLM call failed: HTTP 503 from {server.url}/chat/completions: the server is busy "
        "(code 'queue_full', request prog/plan#2, after 2 retries)"
    )


async def test_a_bad_request_names_its_field_and_is_not_retried(script: list[ScriptServer]) -> None:
    error = {
        "message": "too long",
        "type": "invalid_request_error",
        "param": "messages[0].content",
        "code": "x",
    }
    server = serve(script, Reply(400, {"error": error}))
    backend = OpenAIBackend(server.url, "m")
    with pytest.raises(
        LLMServerError, match=r"HTTP 400 .*: too long \(param 'messages\[0\].content', code 'x'"
    ):
        await backend.complete(CHAT)
    await backend.close()
    assert len(server.seen) == 1


async def test_max_retries_zero_and_a_timeout(script: list[ScriptServer]) -> None:
    server = serve(
        script, Reply(503, OVERLOADED, {"Retry-After": "1"}), Reply(body=chat_reply("late"), delay=1.0)
    )
    backend = OpenAIBackend(server.url, "m", max_retries=0, timeout=0.3)
    with pytest.raises(LLMServerError, match=r"HTTP 503 .* \(code 'queue_full', request prog/plan#2\)$"):
        await backend.complete(CHAT)
    with pytest.raises(LLMTimeoutError, match="node 'plan': LLM call timed out after 0.3 s"):
        await backend.complete(CHAT)
    await backend.close()
    assert len(server.seen) == 2


async def test_streamed_chat_text_usage_and_tool_calls_in_pieces(script: list[ScriptServer]) -> None:
    call = [
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "nap", "arguments": '{"sec'}}
    ]
    rest = [{"index": 0, "function": {"arguments": 'onds": 2}'}}]
    events = (
        chat_chunk("", role="assistant"),
        chat_chunk("1. a()\n"),
        chat_chunk("2. b($1)\n"),
        chat_chunk(tool_calls=call),
        chat_chunk(tool_calls=rest),
        chat_chunk(None, "tool_calls"),
        usage_chunk(30, 9, cached=16),
    )
    server = serve(script, Reply(events=events, pause=0.01))
    backend = OpenAIBackend(server.url, "m", api_key="k")
    assert isinstance(backend, StreamingLLMBackend)
    deltas = await collect(backend.stream(CHAT))
    await backend.close()
    assert [d.text for d in deltas] == ["1. a()\n", "2. b($1)\n", ""] and {d.attempt for d in deltas} == {2}
    result = deltas[-1].result
    assert result is not None and result.text == "1. a()\n2. b($1)\n" and result.finish_reason == "tool_calls"
    assert (result.prompt_tokens, result.completion_tokens, result.cached_tokens) == (30, 9, 16)
    assert [c.to_openai() for c in result.tool_calls] == [
        {"id": "call_1", "type": "function", "function": {"name": "nap", "arguments": '{"seconds": 2}'}}
    ]
    (seen,) = server.seen
    assert seen.body["stream"] is True and seen.body["stream_options"] == {"include_usage": True}
    assert seen.body["session_id"] == "prog" and seen.headers["authorization"] == "Bearer k"


async def test_a_streamed_raw_prompt(script: list[ScriptServer]) -> None:
    def piece(text: str, reason: str | None = None) -> dict:
        return {"id": "c", "object": "text_completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "text": text, "finish_reason": reason}]}  # fmt: skip

    server = serve(script, Reply(events=(piece("ab"), piece("c", "length"))))
    backend = OpenAIBackend(server.url, "m")
    deltas = await collect(backend.stream(LLMRequest("p", "n", prompt="P", max_tokens=3)))
    await backend.close()
    assert [d.text for d in deltas] == ["ab", "c", ""]
    assert deltas[-1].result is not None and deltas[-1].result.finish_reason == "length"
    assert server.seen[0].path == "/v1/completions" and server.seen[0].body["prompt"] == "P"


async def test_stream_failures_are_typed_errors(script: list[ScriptServer]) -> None:
    error_event = {"error": {"message": "generation failed: boom", "type": "internal_error"}}
    server = serve(
        script,
        Reply(events=(chat_chunk("1. a()\n"), error_event)),
        Reply(events=(chat_chunk("1. a()\n"),), done=False),
    )
    backend = OpenAIBackend(server.url, "m")
    got: list[str] = []
    with pytest.raises(LLMBackendError, match=r"error in the stream from .* \(request prog/plan#2\): .*boom"):
        async for delta in backend.stream(CHAT):
            got.append(delta.text)
    assert got == ["1. a()\n"]  # what came before the error was delivered
    with pytest.raises(
        LLMBackendError, match="malformed response .* ended after 1 chunks without a finish_reason"
    ):
        await collect(backend.stream(CHAT))
    await backend.close()


async def test_malformed_replies_name_the_field(script: list[ScriptServer]) -> None:
    bad_args = chat_reply("")
    bad_args["choices"][0]["message"]["tool_calls"] = [
        {"id": "c", "function": {"name": "nap", "arguments": "{x"}}
    ]
    server = serve(script, Reply(body=bad_args), Reply(body={"choices": []}))
    backend = OpenAIBackend(server.url, "m")
    field = r"choices\[0\]\.message\.tool_calls\[0\]\.function\.arguments is not JSON"
    with pytest.raises(LLMBackendError, match=rf"malformed response from .*/chat/completions .*: {field}"):
        await backend.complete(CHAT)
    with pytest.raises(LLMBackendError, match=r"choices is \[\], not a list of choice objects"):
        await backend.complete(CHAT)
    await backend.close()


async def test_no_api_key_sends_no_authorization(
    script: list[ScriptServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "a-key-for-another-server")
    server = serve(script, Reply(body=chat_reply("x")))
    backend = OpenAIBackend(server.url, "m")
    await backend.complete(CHAT)
    await backend.close()
    assert "authorization" not in server.seen[0].headers
    assert backend.client.is_closed and backend.tether_server is False  # its /models: owned_by "scripted"


async def test_a_tether_server_gets_hints_and_program_ends(script: list[ScriptServer]) -> None:
    server = ScriptServer([Reply(body=chat_reply("x")), Reply(body={"known": True})], owner="tether")
    script.append(server)
    backend = OpenAIBackend(server.url, "m")
    await backend.complete(CHAT)
    await backend.end_program("prog/1")
    await backend.close()
    assert server.seen[0].body["tether"] == {"program_id": "prog", "turn": 0}
    assert server.seen[1].path == "/v1/programs/prog%2F1/end"
