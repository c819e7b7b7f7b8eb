"""The ``openai`` SDK against ``tether serve``, unchanged but for its base URL: what a client of vLLM or OpenAI does.

    .venv/bin/tether serve --model smollm2 &           # in another shell
    .venv/bin/python examples/openai_client.py --base-url http://127.0.0.1:8000/v1

One program of four turns, each a different part of the protocol: a plain chat, a streamed chat, a tool call
(``tool_choice="required"``) and a ``response_format`` json_schema answer, all tagged with one Tether session
(``extra_body={"tether": {...}}``) so the later turns reuse the first turns' cached prefix; then one bad request
for the error object. Prints one JSON line: what each step returned.
"""

from __future__ import annotations

import argparse
import json

from openai import BadRequestError, OpenAI

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
CITY_SCHEMA = {
    "name": "city",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "country": {"type": "string"}},
        "required": ["name", "country"],
        "additionalProperties": False,
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--api-key", default="none")
    args = parser.parse_args()
    client = OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=2)
    history = [
        {"role": "system", "content": "You are a helpful assistant who knows about cities."},
        {"role": "user", "content": "Name one famous city in France."},
    ]
    out: dict = {}

    def chat(turn: int, **kw):
        tether = {"program_id": "openai-client-example", "turn": turn}
        return client.chat.completions.create(
            model=args.model, messages=history, temperature=0.0, extra_body={"tether": tether}, **kw
        )

    plain = chat(0, max_tokens=24)
    out["plain"] = {"text": plain.choices[0].message.content, "usage": plain.usage.model_dump()}
    history += [{"role": "assistant", "content": plain.choices[0].message.content}]
    history += [{"role": "user", "content": "And one in Italy?"}]
    deltas = [
        chunk.choices[0].delta.content or "" for chunk in chat(1, max_tokens=24, stream=True) if chunk.choices
    ]
    out["streamed"] = {"chunks": len(deltas), "text": "".join(deltas)}
    history += [{"role": "assistant", "content": "".join(deltas)}]
    history += [{"role": "user", "content": "What is the weather in Paris?"}]
    tool = chat(2, max_tokens=64, tools=[WEATHER_TOOL], tool_choice="required")
    call = tool.choices[0].message.tool_calls[0]
    out["tool_call"] = {
        "name": call.function.name,
        "arguments": json.loads(call.function.arguments),
        "finish_reason": tool.choices[0].finish_reason,
    }
    history[-1] = {"role": "user", "content": "Give one city in Spain as JSON."}
    structured = chat(3, max_tokens=64, response_format={"type": "json_schema", "json_schema": CITY_SCHEMA})
    out["structured"] = json.loads(structured.choices[0].message.content)
    out["cached_tokens"] = (
        (structured.usage.prompt_tokens_details.cached_tokens or 0)
        if structured.usage.prompt_tokens_details
        else 0
    )
    try:
        client.chat.completions.create(model=args.model, messages=[{"role": "user"}])
        out["error"] = None
    except BadRequestError as exc:
        out["error"] = {"status": exc.status_code, "body": exc.body}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
