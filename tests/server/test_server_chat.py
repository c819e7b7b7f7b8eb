"""Chat completions on SmolLM2 through the real ``openai`` client against a real ``tether serve`` process."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import openai
import pytest

from tests.server.serve import integrity

pytestmark = pytest.mark.slow  # the openai client against a `tether serve --model smollm2` process

ROOT = Path(__file__).resolve().parents[2]
TOOLS = json.loads((ROOT / "examples" / "tools" / "weather.json").read_text())
WEATHER_SCHEMA = TOOLS[0]["function"]["parameters"]


@pytest.fixture
def client(smollm2_server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=smollm2_server, api_key="none", max_retries=0)


def test_second_turn_of_a_session_reads_the_cache(client: openai.OpenAI, smollm2_server: str) -> None:
    messages = [{"role": "user", "content": "Name a large ocean."}]
    first = client.chat.completions.create(
        model="smollm2", messages=messages, max_tokens=16, temperature=0, extra_body={"session_id": "chat-a"}
    )
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    messages += [
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "And a small sea?"},
    ]
    second = client.chat.completions.create(
        model="smollm2", messages=messages, max_tokens=16, temperature=0, extra_body={"session_id": "chat-a"}
    )
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert 0 < cached < second.usage.prompt_tokens
    assert cached >= first.usage.prompt_tokens - 16  # the whole first prompt, but its last partial block
    integrity(smollm2_server)


def test_streamed_deltas_concatenate_to_the_unstreamed_text(client: openai.OpenAI) -> None:
    kwargs = dict(
        model="smollm2",
        messages=[{"role": "user", "content": "Write two sentences about rivers."}],
        max_tokens=40,
        temperature=0.8,
        seed=1234,
    )
    whole = client.chat.completions.create(**kwargs)
    stream = client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs)
    pieces, reasons, usage = [], [], None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            reasons.append(choice.finish_reason)
    assert "".join(pieces) == whole.choices[0].message.content
    assert len(pieces) > 3  # really streamed
    assert reasons[-1] == whole.choices[0].finish_reason and not any(reasons[:-1])
    assert usage.completion_tokens == whole.usage.completion_tokens


def test_forced_tool_call_round_trips_through_the_messages(
    client: openai.OpenAI, smollm2_server: str
) -> None:
    messages = [{"role": "user", "content": "What's the weather like in Paris today?"}]
    first = client.chat.completions.create(
        model="smollm2",
        messages=messages,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=64,
        temperature=0,
        extra_body={"session_id": "tools-a"},
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and call.id.startswith("call_")
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_SCHEMA)
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18 degrees celsius and sunny"},
    ]
    second = client.chat.completions.create(
        model="smollm2",
        messages=messages,
        tools=TOOLS,
        max_tokens=48,
        temperature=0,
        extra_body={"session_id": "tools-a"},
    )
    # the assistant's call and the tool result were rendered after the first prompt: one growing prefix
    assert second.usage.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens - 16
    assert second.choices[0].finish_reason in ("stop", "length", "tool_calls")
    integrity(smollm2_server)


def test_required_tool_choice_streams_the_call(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Search the web for the tallest building."}],
        tools=TOOLS,
        tool_choice="required",
        max_tokens=64,
        temperature=0,
        stream=True,
    )
    calls, content, reason = [], "", None
    for chunk in stream:
        for choice in chunk.choices:
            content += choice.delta.content or ""
            calls += choice.delta.tool_calls or []
            reason = choice.finish_reason or reason
    assert reason == "tool_calls" and content == "" and len(calls) == 1
    name = calls[0].function.name
    schema = next(t["function"]["parameters"] for t in TOOLS if t["function"]["name"] == name)
    jsonschema.validate(json.loads(calls[0].function.arguments), schema)


def test_json_schema_response_format_validates(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer", "minimum": 0}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    out = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Give a city and its population as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
        max_tokens=60,
        temperature=0,
    )
    assert out.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(out.choices[0].message.content), schema)
