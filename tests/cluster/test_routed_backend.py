"""``RoutedBackend`` in front of several servers (here recording fakes of ``LLMBackend``: one layer under test):
a program's calls stay on one server, in-flight counts are its queues, ends reach every server it touched."""

from __future__ import annotations

import asyncio

import pytest

from tether.runtime.cluster.routers import ProgramRouter, get_router
from tether.runtime.executor.backends.routed import RoutedBackend, prompt_key
from tether.runtime.executor.llm import LLMRequest, LLMResult, stream_llm


class Server:
    name = "fake"

    def __init__(self, label: str, hold: asyncio.Event | None = None) -> None:
        self.label, self.hold = label, hold
        self.calls: list[str] = []
        self.ended: list[str] = []
        self.closed = False

    async def complete(self, request: LLMRequest) -> LLMResult:
        self.calls.append(request.program_id)
        if self.hold is not None:
            await self.hold.wait()
        return LLMResult(self.label)

    async def end_program(self, program_id: str) -> None:
        self.ended.append(program_id)

    async def close(self) -> None:
        self.closed = True


def call(pid: str, node: str = "n", prompt: str = "x") -> LLMRequest:
    return LLMRequest(pid, node, prompt=prompt)


async def test_a_programs_calls_stay_on_one_server_and_its_end_reaches_it():
    servers = {f"s{i}": Server(f"s{i}") for i in range(3)}
    routed = RoutedBackend(servers, ProgramRouter(seed=0))
    first = (await routed.complete(call("p", "a"))).text
    assert [(await routed.complete(call("p", f"b{i}"))).text for i in range(5)] == [first] * 5
    deltas = [d async for d in stream_llm(routed, call("p", "c"))]
    assert deltas[-1].result.text == first  # streaming goes the same way
    await routed.end_program("p")
    assert servers[first].ended == ["p"] and all(s.ended == [] for n, s in servers.items() if n != first)
    await routed.close()
    assert all(s.closed for s in servers.values())


async def test_in_flight_calls_are_the_queues():
    """pow2 over two servers: a call held on "a" is a queue of 1 there, so the next calls go to "b"."""
    gate = asyncio.Event()
    servers = {"a": Server("a", gate), "b": Server("b")}
    routed = RoutedBackend(servers, get_router("pow2"))
    held = asyncio.ensure_future(routed.complete(call("q0")))  # both queues empty: the tie goes to "a"
    await asyncio.sleep(0)
    assert [(await routed.complete(call(f"q{i}"))).text for i in (1, 2, 3)] == ["b", "b", "b"]
    gate.set()
    assert (await held).text == "a" and servers["a"].calls == ["q0"]


async def test_a_turn_moved_off_an_overloaded_server_ends_the_program_there():
    servers = {"a": Server("a"), "b": Server("b")}
    routed = RoutedBackend(servers, ProgramRouter(seed=0, overload_factor=1.0, overload_slack=1))
    assert (await routed.complete(call("p"))).text == "a"  # a new program: pow2, the tie goes to "a"
    gate = asyncio.Event()
    servers["a"].hold = gate
    routed.router.routed(call("r"), "a")  # another program whose server is "a" too
    held = [asyncio.ensure_future(routed.complete(call("r", f"n{i}"))) for i in range(3)]
    await asyncio.sleep(0)
    assert servers["a"].calls.count("r") == 3  # 3 in flight against a mean of 1.5: past max(1.5, 2.5)
    assert (await routed.complete(call("p", "next"))).text == "b"
    assert servers["a"].ended == ["p"]  # released where it was
    gate.set()
    await asyncio.gather(*held)
    await routed.end_program("p")
    assert servers["b"].ended == ["p"] and servers["a"].ended == ["p", "p"]


def test_prompt_key_reads_the_prompt_or_the_messages():
    assert prompt_key(call("p", prompt="ab")) == (97, 98)
    messages = ({"role": "system", "content": "a"}, {"role": "user", "content": "b"}, {"role": "tool"})
    assert prompt_key(LLMRequest("p", "n", messages=messages)) == (97, 98)
    with pytest.raises(ValueError, match="at least one backend"):
        RoutedBackend({}, get_router("pow2"))
