"""Every error is an OpenAI-style object with the right status, seen through the real ``openai`` client, and
the server keeps serving after each."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import openai
import pytest

from tests.server.serve import API_KEY, integrity, metric

pytestmark = pytest.mark.slow  # `tether serve` processes (tiny_server, limited_server)


@pytest.fixture
def client(tiny_server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=tiny_server, api_key=API_KEY, max_retries=0)


def ok(client: openai.OpenAI) -> None:
    out = client.completions.create(model="tiny", prompt="ping", max_tokens=2, temperature=0)
    assert out.choices[0].finish_reason in ("stop", "length")


def test_bad_field_is_400_naming_it(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "hi"}], temperature=7.0
        )
    assert err.value.status_code == 400
    assert err.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="tiny", messages=[{"role": "wizard", "content": "hi"}])
    assert err.value.body["param"] == "messages[0].role"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="tiny", messages=[{"role": "system", "content": "s"}, {"role": "user"}]
        )
    assert (err.value.body["param"], err.value.body["code"]) == ("messages[1].content", "missing_field")
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": "hi"}],
            tools=[{"type": "function", "function": {"name": "bad name!"}}],
        )
    assert err.value.body["param"] == "tools[0].function.name"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], n=2)
    assert err.value.body["param"] == "n"
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model="tiny", prompt="x", extra_body={"tether": {"turns": 3}})
    assert err.value.body["param"] == "tether.turns"
    ok(client)


def test_malformed_json_is_400(tiny_server: str, client: openai.OpenAI) -> None:
    response = httpx.post(
        f"{tiny_server}/chat/completions",
        content=b'{"model": "tiny", "messages": [',
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    missing = httpx.post(
        f"{tiny_server}/chat/completions",
        json={"model": "tiny"},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "messages"
    ok(client)


def test_prompt_over_the_context_is_400_with_the_limits(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model="tiny", prompt=[65] * 5000, max_tokens=4)
    body = err.value.body
    assert body["code"] == "context_length_exceeded" and body["param"] == "prompt"
    assert "maximum context length is 2048 tokens" in body["message"]
    assert "5004 tokens (5000 in the prompt, 4 in the completion)" in body["message"]
    with pytest.raises(openai.BadRequestError) as err:  # fits alone, not with the completion asked for
        client.completions.create(model="tiny", prompt=[65] * 2000, max_tokens=100)
    assert err.value.body["code"] == "context_length_exceeded"
    ok(client)


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert err.value.body["code"] == "model_not_found"
    ok(client)


def test_wrong_api_key_is_401(tiny_server: str, client: openai.OpenAI) -> None:
    bad = openai.OpenAI(base_url=tiny_server, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    with pytest.raises(openai.AuthenticationError):
        bad.completions.create(model="tiny", prompt="x")
    assert [m.id for m in client.models.list()] == ["tiny"]
    ok(client)


def test_unsupported_values_are_refused_by_name(client: openai.OpenAI) -> None:
    for kwargs, param in (
        ({"logprobs": True}, "logprobs"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
    ):
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": "x"}], **kwargs
            )
        assert err.value.body["param"] == param
    ok(client)


def test_full_waiting_queue_is_503_with_retry_after(limited_server: str) -> None:
    """One request runs (max 1 sequence), one waits (cap 1): the next is refused with Retry-After."""
    client = openai.OpenAI(base_url=limited_server, api_key="none", max_retries=0)
    long = {"model": "tiny", "max_tokens": 20000, "extra_body": {"ignore_eos": True, "min_tokens": 20000}}
    running = client.completions.create(prompt="a", stream=True, **long)
    chunks = iter(running)  # kept: dropping the iterator would close the stream
    next(chunks)  # admitted and running
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(lambda: client.completions.create(model="tiny", prompt="b", max_tokens=2))
        deadline = time.monotonic() + 30
        while metric(limited_server, "tether_requests_waiting") < 1:
            assert time.monotonic() < deadline, "the second request never queued"
            time.sleep(0.05)
        refused = httpx.post(
            f"{limited_server}/completions", json={"model": "tiny", "prompt": "c", "max_tokens": 2}
        )
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["error"]["code"] == "queue_full"
        running.close()  # the long request is aborted: the waiting one runs
        assert waiting.result(timeout=60).choices[0].finish_reason == "length"
    ok(client)
    integrity(limited_server)
