"""The framework adapters' requests, without a server: the real LangGraph / langchain-openai and OpenAI Agents SDK
send their calls through an ``httpx.MockTransport`` that answers as ``tether serve`` does and records each body
(the end-to-end runs are test_real_frameworks.py)."""

from __future__ import annotations

import json

import httpx
import pytest
from agents import Agent, ModelSettings, Runner, function_tool, set_tracing_disabled
from agents.exceptions import MaxTurnsExceeded
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from openai import AsyncOpenAI

from tether.hints import HintsWireError
from tether.integrations.langgraph import tether_chat_model, tether_config
from tether.integrations.openai_agents import NoModelError, TetherModelProvider, run_program
from tether.integrations.programs import ProgramClient, ProgramEndError

URL = "http://tether.test/v1"


class FakeServer:
    """Chat replies (a call of ``lookup`` while ``calls_left``, else an answer) and program ends (known once per
    program turn sequence); ``chats`` and ``ends`` record what came."""

    def __init__(self, calls_left: int = 1, end_status: int = 200) -> None:
        self.calls_left = calls_left
        self.end_status = end_status
        self.chats: list[dict] = []
        self.ends: list[str] = []
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/end"):
            self.ends.append(request.url.raw_path.decode().split("/")[-2])  # as sent: URL-encoded
            return httpx.Response(self.end_status, json={"ended": True, "known": True})
        self.chats.append(json.loads(request.content))
        if self.chats[-1].get("stream"):
            return httpx.Response(200, text=_SSE, headers={"content-type": "text/event-stream"})
        message: dict = {"role": "assistant", "content": "It is sunny."}
        if self.calls_left:
            self.calls_left -= 1
            call = {"id": f"c{len(self.chats)}", "type": "function"}
            call["function"] = {"name": "lookup", "arguments": '{"city": "Paris"}'}
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
        usage = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
        choice = {
            "index": 0,
            "message": message,
            "finish_reason": "tool_calls" if "tool_calls" in message else "stop",
        }
        body = {"id": f"chatcmpl-{len(self.chats)}", "object": "chat.completion", "created": 0, "model": "m"}
        return httpx.Response(200, json={**body, "choices": [choice], "usage": usage})

    def tethers(self) -> list[dict | None]:
        return [chat.get("tether") for chat in self.chats]


_CHUNK = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 0, "model": "m"}
_DELTA = {"index": 0, "delta": {"role": "assistant", "content": "sunny"}, "finish_reason": "stop"}
_SSE = f"data: {json.dumps({**_CHUNK, 'choices': [_DELTA]})}\n\ndata: [DONE]\n\n"


def graph_of(model):
    @tool
    def lookup(city: str) -> str:
        """Look a city up."""
        return f"{city}: sunny"

    caller = model.bind_tools([lookup])

    def agent(state: MessagesState) -> dict:
        return {"messages": [caller.invoke(state["messages"])]}

    def route(state: MessagesState) -> str:
        return "tools" if state["messages"][-1].tool_calls else END

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([lookup]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", route)
    graph.add_edge("tools", "agent")
    return graph.compile()


def chat_model(server: FakeServer, **kwargs):
    programs = ProgramClient(URL, transport=server.transport)
    http = {"http_client": httpx.Client(transport=server.transport)}
    http["http_async_client"] = httpx.AsyncClient(transport=server.transport)
    return tether_chat_model(URL, "m", programs=programs, **http, **kwargs)


def test_langgraph_calls_carry_the_thread_and_turn_and_the_run_end_ends_it() -> None:
    server = FakeServer(calls_left=2)
    model = chat_model(server, extra_body={"top_k": 5})
    graph_of(model).invoke({"messages": [HumanMessage("weather?")]}, tether_config(model, "t/1"))
    assert server.tethers() == [{"program_id": "t/1", "turn": k} for k in range(3)]
    assert all(chat["top_k"] == 5 for chat in server.chats)  # the model's own extra_body is kept
    assert server.ends == ["t%2F1"]  # once, URL-encoded, when the graph run ended
    graph_of(model).invoke({"messages": [HumanMessage("again?")]}, tether_config(model, "t/1"))
    assert server.tethers()[3:] == [{"program_id": "t/1", "turn": 0}]  # ended: a new program starts at turn 0
    assert model.end_program("t/1") is False and server.ends == ["t%2F1"] * 2  # nothing open: nothing sent


async def test_langgraph_async_run_ends_its_program_on_failure() -> None:
    server = FakeServer(calls_left=1)
    model = chat_model(server)

    @tool
    def lookup(city: str) -> str:
        """Look a city up."""
        raise RuntimeError("tool down")

    graph = StateGraph(MessagesState)
    graph.add_node("agent", lambda s: {"messages": [model.bind_tools([lookup]).invoke(s["messages"])]})
    graph.add_node("tools", ToolNode([lookup], handle_tool_errors=False))
    graph.add_edge(START, "agent")
    graph.add_edge("agent", "tools")
    with pytest.raises(RuntimeError, match="tool down"):
        await graph.compile().ainvoke({"messages": [HumanMessage("x")]}, tether_config(model, "t2"))
    assert server.tethers() == [{"program_id": "t2", "turn": 0}] and server.ends == ["t2"]


def test_langgraph_hints_outside_a_thread_and_bad_hints() -> None:
    server = FakeServer(calls_left=0)
    model = chat_model(server)
    thread = {"configurable": {"thread_id": "t3"}}
    model.invoke("hi")  # no graph, no thread: no program
    model.bind(tether={"last_turn": True}).invoke("hi", thread)
    model.bind(extra_body={"tether": {"program_id": "mine"}}).invoke("hi")
    assert server.tethers() == [
        None,
        {"program_id": "t3", "turn": 0, "last_turn": True},
        {"program_id": "mine", "turn": 0},
    ]
    with pytest.raises(HintsWireError) as err:
        model.bind(tether={"next_tools": "search"}).invoke("hi", thread)
    assert err.value.field == "next_tools"


async def test_langgraph_streamed_calls_carry_the_thread_too() -> None:
    server = FakeServer(calls_left=0)
    model = chat_model(server)
    thread = {"metadata": {"thread_id": "t4"}}
    assert "".join(chunk.content for chunk in model.stream("hi", thread)) == "sunny"
    assert "".join([chunk.content async for chunk in model.astream("hi", thread)]) == "sunny"
    assert [chat["stream"] for chat in server.chats] == [True, True]
    assert server.tethers() == [{"program_id": "t4", "turn": 0}, {"program_id": "t4", "turn": 1}]
    assert await model.aend_program("t4") is True and server.ends == ["t4"]


def agents_provider(server: FakeServer, **kwargs) -> TetherModelProvider:
    client = AsyncOpenAI(base_url=URL, api_key="k", http_client=httpx.AsyncClient(transport=server.transport))
    programs = ProgramClient(URL, "k", transport=server.transport)
    return TetherModelProvider(URL, client=client, programs=programs, **kwargs)


def lookup_agent(**kwargs) -> Agent:
    @function_tool
    def lookup(city: str) -> str:
        """Look a city up."""
        return f"{city}: sunny"

    return Agent(name="a", instructions="Use the tool.", tools=[lookup], **kwargs)


async def test_agents_run_names_one_program_and_its_hooks_end_it() -> None:
    set_tracing_disabled(True)
    server = FakeServer(calls_left=1)
    provider = agents_provider(server, program_id="run-1", model="m")
    settings = ModelSettings(extra_body={"tether": {"prefix_group": "g"}, "top_k": 3})
    agent = lookup_agent(model_settings=settings)  # no model: the provider's
    result = await Runner.run(agent, "weather?", run_config=provider.run_config(), hooks=provider.hooks())
    assert result.final_output == "It is sunny."
    assert server.tethers() == [{"program_id": "run-1", "turn": k, "prefix_group": "g"} for k in range(2)]
    assert [chat["model"] for chat in server.chats] == ["m", "m"] and server.chats[0]["top_k"] == 3
    assert server.ends == ["run-1"]
    assert await provider.end_program() is False and server.ends == ["run-1"]  # ended once


async def test_agents_run_program_ends_a_failed_run_and_no_model_is_named() -> None:
    set_tracing_disabled(True)
    server = FakeServer(calls_left=5)
    provider = agents_provider(server)
    with pytest.raises(MaxTurnsExceeded):
        await run_program(lookup_agent(model="m"), "weather?", provider, max_turns=2)
    assert [t["turn"] for t in server.tethers()] == [0, 1] and server.ends == [provider.program_id]
    assert provider.program_id.startswith("agents-")
    with pytest.raises(NoModelError):
        provider.get_model(None)


def test_program_end_refused_is_a_typed_error_and_404_is_not_tether() -> None:
    for status, expect in ((404, False), (500, ProgramEndError)):
        programs = ProgramClient(URL, transport=FakeServer(end_status=status).transport)
        programs.hints("p")
        if expect is False:
            assert programs.end("p") is False
        else:
            with pytest.raises(ProgramEndError) as err:
                programs.end("p")
            assert err.value.program_id == "p" and err.value.status == 500
