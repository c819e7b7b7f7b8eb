"""A pydantic-ai agent with structured output on ``tether serve``, unchanged but for its base URL.

    .venv/bin/tether serve --model smollm2 &           # in another shell
    .venv/bin/python examples/pydantic_ai_agent.py --base-url http://127.0.0.1:8000/v1

The agent's output type is a pydantic model (``CityFacts``): pydantic-ai offers it to the model as an output
tool beside a function tool (``get_population``) and requires a tool call on every step, so the run ends when
the model calls the output tool with arguments that validate; Tether generates tool arguments under each tool's
JSON schema, so they do. Prints one JSON line: the function tools called, the validated output and the number of
model requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_ai.usage import UsageLimits

CALLS: list[dict] = []


class CityFacts(BaseModel):
    """Facts about one city."""

    city: str
    country: str


def get_population(city: str) -> str:
    """Get the number of people living in a city."""
    CALLS.append({"tool": "get_population", "arguments": {"city": city}})
    return f"{city} has 2.1 million inhabitants."


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--api-key", default="none")
    parser.add_argument("--question", default="Which country is Paris in?")
    args = parser.parse_args()
    model = OpenAIChatModel(args.model, provider=OpenAIProvider(base_url=args.base_url, api_key=args.api_key))
    agent = Agent(
        model,
        output_type=CityFacts,
        tools=[get_population],
        instructions="You answer questions about cities.",
        model_settings={
            "temperature": 0.0,
            "max_tokens": 96,
            "extra_body": {"tether": {"program_id": "pydantic-ai"}},
        },
        retries=3,
    )
    result = await agent.run(args.question, usage_limits=UsageLimits(request_limit=6))
    print(
        json.dumps(
            {
                "tool_calls": CALLS,
                "output": result.output.model_dump(),
                "requests": result.usage.requests,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
