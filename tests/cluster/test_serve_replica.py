"""``EngineReplica``, the Ray Serve deployment's class, built directly (no Ray): the server's request handling
behind ``ReplicaCall`` values, its routing stats and its control calls."""

from __future__ import annotations

import asyncio
import json

import pytest

from tether.runtime.cluster.serve.calls import ReplicaCall, ReplicaHead, prompt_text
from tether.runtime.cluster.serve.replica import EngineReplica, ReplicaSpec
from tether.runtime.engine.config import EngineConfig
from tether.runtime.server.metrics import MetricsReport
from tether.runtime.server.serving import ServerConfig


@pytest.fixture
async def replica():
    spec = ReplicaSpec(EngineConfig(model="tiny", num_kv_blocks=64, policy="tether"), ServerConfig(("tiny",)))
    r = await EngineReplica.create(spec, replica_id="r0")
    yield r
    await r.close()


def _completion(pid: str, prompt: list[int], **extra) -> ReplicaCall:
    body = {"model": "tiny", "prompt": prompt, "max_tokens": 3, "session_id": pid, **extra}
    raw = json.dumps(body).encode()
    return ReplicaCall("generate", pid, "/v1/completions", raw, {}, prompt_text(body))


async def _answer(replica: EngineReplica, call: ReplicaCall) -> tuple[ReplicaHead, list[bytes]]:
    items = [item async for item in replica.generate(call)]
    head, rest = items[0], items[1:]
    assert isinstance(head, ReplicaHead)
    return head, rest


async def test_a_turn_is_answered_whole_and_its_program_is_pinned_here(replica: EngineReplica) -> None:
    head, rest = await _answer(replica, _completion("p1", list(range(40)), tether={"next_tool": "search"}))
    assert (head.replica_id, head.status, head.stream, rest) == ("r0", 200, False, [])
    assert head.body["usage"]["completion_tokens"] == 3
    stats = await replica.record_routing_stats()
    assert stats["programs"] == ["p1"] and stats["pins"] == 1 and stats["parked"] == 0
    assert stats["num_blocks"] == 64 and stats["free_blocks"] < 64 and stats["queue_len"] == 0
    assert await replica.control(ReplicaCall("end", "p1", reason="moved")) is True
    stats = await replica.record_routing_stats()
    assert stats["programs"] == [] and stats["free_blocks"] == 64
    report = await replica.control(ReplicaCall("stats"))
    assert isinstance(report, MetricsReport)
    assert report.ended == {"moved": 1} and report.totals.pins_created == 1
    assert report.usage["prompt_tokens"] == 40 and report.usage["generation_tokens"] == 3
    assert (await replica.control(ReplicaCall("integrity")))["free"] == 64


async def test_a_stream_is_a_head_then_its_events(replica: EngineReplica) -> None:
    head, events = await _answer(replica, _completion("p2", list(range(20)), stream=True))
    assert head.stream and head.body is None
    assert events[-1] == b"data: [DONE]\n\n"
    assert all(e.startswith(b"data: ") for e in events) and len(events) >= 4


async def test_closing_a_stream_early_aborts_its_request(replica: EngineReplica) -> None:
    call = _completion("p4", list(range(20)), stream=True, max_tokens=900, ignore_eos=True)
    answer = replica.generate(call)
    assert (await anext(answer)).stream
    await anext(answer)
    await answer.aclose()  # what Ray does when the ingress cancels the call
    for _ in range(100):
        if (await replica.record_routing_stats())["queue_len"] == 0:
            break
        await asyncio.sleep(0.02)
    assert (await replica.record_routing_stats())["queue_len"] == 0
    await replica.control(ReplicaCall("integrity"))


async def test_a_bad_request_is_an_error_head_and_the_replica_keeps_serving(replica: EngineReplica) -> None:
    head, rest = await _answer(replica, _completion("p3", list(range(8)), model="nope"))
    assert head.status == 404 and head.body["error"]["code"] == "model_not_found" and rest == []
    head, _ = await _answer(replica, _completion("p3", list(range(8)), max_tokens=-1))
    assert head.status == 400 and head.body["error"]["param"] == "max_tokens"
    head, _ = await _answer(replica, _completion("p3", list(range(8))))
    assert head.status == 200
    assert await replica.control(ReplicaCall("end", "p3")) is True
    await replica.control(ReplicaCall("integrity"))


async def test_an_unknown_control_call_is_refused(replica: EngineReplica) -> None:
    with pytest.raises(ValueError, match="not a control call"):
        await replica.control(ReplicaCall("generate"))


def test_the_prompt_the_prefix_router_reads() -> None:
    assert prompt_text({"prompt": "abc"}) == "abc"
    assert prompt_text({"prompt": [5, 17, 3]}) == "5 17 3 "
    assert prompt_text({"prompt": [[1, 2], [3]]}) == "1 2 "
    assert prompt_text({"prompt": ["ab", "cd"]}) == "abcd"
    messages = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": [{"type": "text", "text": "u"}]},
    ]
    assert prompt_text({"messages": messages}) == "su"
    assert prompt_text({}) == ""
