"""A LangGraph graph with langchain-openai's ``ChatOpenAI`` on ``tether serve``, unchanged but for its base URL.

    .venv/bin/tether serve --model smollm2 &           # in another shell
    .venv/bin/python examples/langgraph_agent.py --base-url http://127.0.0.1:8000/v1

The graph is LangGraph's tool loop written out: ``agent`` (the model with two tools bound) -> ``tools``
(LangGraph's ``ToolNode`` runs the calls) -> ``answer`` (the model without tools, reading the results) -> end.
The agent's step forces a tool call (``tool_choice="required"``) so SmolLM2-135M calls a tool with arguments
generated under its JSON schema; the answer step cannot call tools, so the graph always ends. Each model call
carries the same Tether session (``extra_body``), so the answer step reuses the agent step's cached prefix.
Prints one JSON line: the tool calls made, the answer and the messages' roles.
"""

from __future__ import annotations

import argparse
import json

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode

CALLS: list[dict] = []


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    CALLS.append({"tool": "get_weather", "arguments": {"city": city}})
    return f"The weather in {city} is sunny and 22 degrees Celsius."


@tool
def get_population(city: str) -> str:
    """Get the number of people living in a city."""
    CALLS.append({"tool": "get_population", "arguments": {"city": city}})
    return f"{city} has 2.1 million inhabitants."


def build_graph(model: ChatOpenAI):
    tools = [get_weather, get_population]
    caller = model.bind_tools(tools, tool_choice="required")

    def agent(state: MessagesState) -> dict:
        return {"messages": [caller.invoke(state["messages"])]}

    def answer(state: MessagesState) -> dict:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(tools))
    graph.add_node("answer", answer)
    graph.add_edge(START, "agent")
    graph.add_edge("agent", "tools")
    graph.add_edge("tools", "answer")
    graph.add_edge("answer", END)
    return graph.compile()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--api-key", default="none")
    parser.add_argument("--question", default="What's the weather like in Paris today?")
    args = parser.parse_args()
    model = ChatOpenAI(
        model=args.model,
        base_url=args.base_url,
        api_key=args.api_key,
        temperature=0.0,
        max_tokens=96,
        extra_body={"tether": {"program_id": "langgraph-example"}},
    )
    messages = [
        SystemMessage("You answer questions about cities using the tools."),
        HumanMessage(args.question),
    ]
    state = build_graph(model).invoke({"messages": messages})
    final = state["messages"][-1]
    print(
        json.dumps(
            {
                "tool_calls": CALLS,
                "final_output": final.content,
                "roles": [m.type for m in state["messages"]],
            }
        )
    )


if __name__ == "__main__":
    main()
