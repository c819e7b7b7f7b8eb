"""The framework adapters with the real libraries (LangGraph + langchain-openai, the OpenAI Agents SDK) against
real ``tether serve --model smollm2`` processes, one per policy (``scenario.py``): an agent calls a tool that
runs while a background load churns the KV cache; then its second turn reuses its first under ``--policy
tether`` (the program's pin held) and not under ``--policy vllm`` (the load evicted the idle prefix). Every call
of a run names the run's program in the server's trace, and the program ends when the run finishes."""

from __future__ import annotations

import uuid

import pytest
from agents import Agent, ModelSettings, Runner, function_tool, set_tracing_disabled
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode

from tests.integrations.scenario import MODEL, QUESTION, SYSTEM, Load, PolicyServer, chat_requests
from tests.server.serve import integrity, metric
from tether.integrations.langgraph import tether_chat_model, tether_config
from tether.integrations.openai_agents import EndProgramHooks, TetherModelProvider

pytestmark = pytest.mark.slow  # two `tether serve --model smollm2` processes, a real agent run on each

TOOL = "get_weather"


def check_second_turn(server: PolicyServer, prompt_tokens: int, cached_tokens: int) -> None:
    """The second turn's prefix hit: over 90% of its prompt with the pin, under a quarter without."""
    if server.policy == "tether":
        assert cached_tokens > 0.9 * prompt_tokens, (cached_tokens, prompt_tokens)
    else:
        assert cached_tokens < 0.25 * prompt_tokens, (cached_tokens, prompt_tokens)


def check_program(server: PolicyServer, since: int, program_id: str, calls: int, ended_before: float) -> None:
    """Every chat request the server saw during the run is one of its ``calls`` and named ``program_id``; the
    first turn's tool reached the scheduler (tether pins for it); the program ended, by its client, once."""

    def finished(events: list[dict]) -> bool:
        done = [e for e in events if e["kind"] == "llm_finished" and e["program_id"] == program_id]
        return len(done) >= calls

    events = server.events_until(since, finished)
    assert [e["program_id"] for e in chat_requests(events)] == [program_id] * calls
    if server.policy == "tether":
        pins = [e["attrs"] for e in events if e["kind"] == "kv" and e["program_id"] == program_id]
        assert pins[0]["action"] == "pin_created" and pins[0]["tool"] == TOOL
        assert pins[1]["action"] == "pin_hit"
    assert server.ended_by_client() == ended_before + 1
    assert metric(server.url, "tether_programs") == 0
    report = integrity(server.url)
    assert report["kv_blocks"]["pinned"] == 0


def test_langgraph_thread_is_one_program(policy_server: PolicyServer) -> None:
    server = policy_server
    load = Load(server.url, seed=1)
    usage: list[dict] = []

    @tool
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        load.during_tool()
        return f"The weather in {city} is sunny and 22 degrees Celsius."

    model = tether_chat_model(server.url, MODEL, temperature=0.0, max_tokens=48)
    tools = [get_weather]

    def agent(state: MessagesState) -> dict:
        reply = model.bind_tools(tools, tool_choice="required").invoke(state["messages"])
        usage.append(reply.usage_metadata)
        return {"messages": [reply]}

    def answer(state: MessagesState) -> dict:  # the tools stay offered, so the prompt keeps its prefix
        reply = model.bind_tools(tools, tool_choice="none", max_tokens=12).invoke(state["messages"])
        usage.append(reply.usage_metadata)
        return {"messages": [reply]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(tools))
    graph.add_node("answer", answer)
    graph.add_edge(START, "agent")
    graph.add_edge("agent", "tools")
    graph.add_edge("tools", "answer")
    graph.add_edge("answer", END)

    thread = f"lg-{uuid.uuid4().hex[:8]}"
    since, ended = len(server.events()), server.ended_by_client()
    state = graph.compile().invoke(
        {"messages": [SystemMessage(SYSTEM), HumanMessage(QUESTION)]}, tether_config(model, thread)
    )
    assert [m.type for m in state["messages"]] == ["system", "human", "ai", "tool", "ai"]
    assert state["messages"][2].tool_calls[0]["name"] == TOOL
    assert load.sent > 0
    second = usage[1]
    check_second_turn(server, second["input_tokens"], second["input_token_details"]["cache_read"])
    check_program(server, since, thread, calls=2, ended_before=ended)


class Recorder(EndProgramHooks):
    """The adapter's hooks (end the program at the final output), recording each model call's usage."""

    def __init__(self, provider: TetherModelProvider) -> None:
        super().__init__(provider)
        self.usage: list = []

    async def on_llm_end(self, context, agent, response) -> None:
        self.usage.append(response.usage)


async def test_agents_sdk_run_is_one_program(policy_server: PolicyServer) -> None:
    server = policy_server
    set_tracing_disabled(True)  # the SDK would send its traces to OpenAI's servers
    load = Load(server.url, seed=2)
    tool_calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        if not tool_calls:  # the load runs under the first call; a repeated call returns at once
            load.during_tool()
        tool_calls.append(city)
        return f"The weather in {city} is sunny and 22 degrees Celsius."

    agent = Agent(
        name="assistant",
        instructions=SYSTEM,
        model=MODEL,
        tools=[get_weather],
        model_settings=ModelSettings(temperature=0.0, max_tokens=48, tool_choice="required"),
    )
    provider = TetherModelProvider(server.url, program_id=f"sdk-{uuid.uuid4().hex[:8]}")
    hooks = Recorder(provider)
    since, ended = len(server.events()), server.ended_by_client()
    result = await Runner.run(agent, QUESTION, run_config=provider.run_config(), hooks=hooks, max_turns=4)
    await provider.aclose()
    assert isinstance(result.final_output, str)
    assert tool_calls and load.sent > 0
    second = hooks.usage[1]
    check_second_turn(server, second.input_tokens, second.input_tokens_details.cached_tokens)
    check_program(server, since, provider.program_id, calls=len(hooks.usage), ended_before=ended)
