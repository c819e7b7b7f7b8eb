"""An OpenAI Agents SDK agent (the ``openai-agents`` package) on ``tether serve``, unchanged but for its base URL.

    .venv/bin/tether serve --model smollm2 &           # in another shell
    .venv/bin/python examples/openai_agents_sdk.py --base-url http://127.0.0.1:8000/v1

The SDK (``openai-agents``) is in the main environment's test extra. Its import name, ``agents``, is also the name
of Tether's front-end package, which lives only as ``tether.agents`` (``tether/agents/``), so the SDK wins even from
the repository root. The agent has two function tools; the first turn forces a
tool call (``tool_choice="required"``, which the SDK resets to ``auto`` after the call, so the model then
answers), so SmolLM2-135M calls a tool with arguments generated under its JSON schema. Prints one JSON line:
the tool calls made and the final answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI

CALLS: list[dict] = []


@function_tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    CALLS.append({"tool": "get_weather", "arguments": {"city": city}})
    return f"The weather in {city} is sunny and 22 degrees Celsius."


@function_tool
def get_population(city: str) -> str:
    """Get the number of people living in a city."""
    CALLS.append({"tool": "get_population", "arguments": {"city": city}})
    return f"{city} has 2.1 million inhabitants."


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--api-key", default="none")
    parser.add_argument("--question", default="What's the weather like in Paris today?")
    args = parser.parse_args()
    set_tracing_disabled(True)  # the SDK would send its traces to OpenAI's servers
    client = AsyncOpenAI(base_url=args.base_url, api_key=args.api_key)
    agent = Agent(
        name="assistant",
        instructions="You answer questions about cities using the tools.",
        model=OpenAIChatCompletionsModel(model=args.model, openai_client=client),
        tools=[get_weather, get_population],
        model_settings=ModelSettings(temperature=0.0, max_tokens=128, tool_choice="required"),
    )
    result = await Runner.run(agent, args.question, max_turns=4)
    print(json.dumps({"tool_calls": CALLS, "final_output": result.final_output}))


if __name__ == "__main__":
    asyncio.run(main())
