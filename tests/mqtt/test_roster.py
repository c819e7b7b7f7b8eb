"""Client-side bookkeeping: routing by the roster, and which calls a departed worker takes down."""

from __future__ import annotations

import asyncio

from tether.tools.mqtt.envelope import WorkerStatus
from tether.tools.mqtt.pending import InFlight, PendingCall
from tether.tools.mqtt.roster import Route, WorkerRoster


def _status(worker_id: str, *tools: str, shared: bool = False) -> WorkerStatus:
    return WorkerStatus(worker_id=worker_id, tools=tools, shared=shared)


async def test_direct_routes_go_to_the_least_loaded_worker_then_round_robin() -> None:
    roster = WorkerRoster()
    roster.update("w2", _status("w2", "search"))
    roster.update("w1", _status("w1", "search", "fetch"))
    assert roster.choose("fetch", {}) == Route("tether/workers/w1/call", "w1")
    assert roster.choose("search", {"w1": 2, "w2": 1}) == Route("tether/workers/w2/call", "w2")
    picks = [roster.choose("search", {}).worker for _ in range(4)]  # type: ignore[union-attr]
    assert sorted(picks) == ["w1", "w1", "w2", "w2"]
    assert roster.choose("missing", {}) is None


async def test_a_shared_worker_routes_to_the_tool_topic() -> None:
    roster = WorkerRoster()
    roster.update("w1", _status("w1", "search", shared=True))
    assert roster.choose("search", {}) == Route("tether/tools/search/call", None)


async def test_wait_route_wakes_when_a_worker_comes_online() -> None:
    roster = WorkerRoster()
    waiting = asyncio.ensure_future(roster.wait_route("search", {}))
    await asyncio.sleep(0)
    roster.update("w0", _status("w0", "other"))
    await asyncio.sleep(0)
    assert not waiting.done()
    roster.update("w1", _status("w1", "search"))
    assert await asyncio.wait_for(waiting, 1) == Route("tether/workers/w1/call", "w1")


async def test_departure_loses_held_calls_and_unacked_calls_of_its_tools() -> None:
    loop = asyncio.get_running_loop()
    inflight = InFlight()
    calls = {}
    for call_id, tool, worker in (("held", "a", "w1"), ("other", "a", "w2"), ("unacked", "a", None)):
        call = PendingCall(call_id, tool, {}, loop.create_future(), loop.create_future())
        inflight.add(call)
        inflight.new_attempt(call, worker)
        calls[call_id] = call
    elsewhere = PendingCall("other-tool", "b", {}, loop.create_future(), loop.create_future())
    inflight.add(elsewhere)
    inflight.new_attempt(elsewhere, None)
    assert inflight.load == {"w1": 1, "w2": 1}

    roster = WorkerRoster()
    roster.on_offline(inflight.worker_lost)
    roster.update("w1", _status("w1", "a", shared=True))
    roster.update("w1", None)
    lost = {c.call_id for c in [*calls.values(), elsewhere] if c.lost is not None and c.lost.done()}
    assert lost == {"held", "unacked"}
    assert calls["held"].lost.result() == "worker w1 went offline"  # type: ignore[union-attr]
    inflight.remove(calls["held"])
    assert inflight.load == {"w2": 1}
