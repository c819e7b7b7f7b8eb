"""``OpenAIBackend`` against a real ``tether serve --model smollm2`` (one running request, one waiting): a full
queue's 503 is retried after the server's ``Retry-After``, and the planner streams its plan over HTTP,
grammar-constrained by the server, dispatching a task before the plan's stream ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import httpx2
import pytest

from tests.agents.test_planner_openai import TimedBackend
from tests.server.serve import integrity, serve
from tether.agents.planner.agent import Planner
from tether.runtime.executor import LLMRequest
from tether.runtime.executor.backends.openai import OpenAIBackend
from tether.runtime.tracing import MemoryTraceSink

pytestmark = pytest.mark.slow  # starts a server process with SmolLM2


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    from tether.runtime.engine.models.sources import named_model_path

    try:
        named_model_path("smollm2")
    except Exception as exc:  # noqa: BLE001 - the model package is optional
        pytest.skip(f"SmolLM2 is not installed: {exc}")
    limits = ("--max-num-seqs", "1", "--max-num-waiting", "1")
    with serve(
        "--model", "smollm2", "--num-kv-blocks", "1024", "--max-num-batched-tokens", "512", *limits
    ) as u:
        yield u


async def _wait_for_metric(http: httpx.AsyncClient, base: str, sample: str) -> None:
    deadline = time.monotonic() + 60
    while sample not in (await http.get(base.removesuffix("/v1") + "/metrics")).text:
        assert time.monotonic() < deadline, f"/metrics never showed {sample!r}"
        await asyncio.sleep(0.02)


async def test_a_full_queue_is_retried_after_the_servers_retry_after(url: str) -> None:
    log: list[tuple[float, int, str | None]] = []  # (time, status, Retry-After) of each answer
    sent: list[float] = []  # when each attempt was sent

    async def on_request(request: httpx2.Request) -> None:
        if request.url.path.endswith("/completions"):
            sent.append(time.perf_counter())

    async def on_response(response: httpx2.Response) -> None:
        if response.request.url.path.endswith("/completions"):
            log.append((time.perf_counter(), response.status_code, response.headers.get("retry-after")))

    client = httpx2.AsyncClient(timeout=120, event_hooks={"request": [on_request], "response": [on_response]})
    backend = OpenAIBackend(url, "smollm2", client=client, max_retries=30)
    running = {"model": "smollm2", "prompt": "Count:", "max_tokens": 64, "ignore_eos": True, "stream": True}
    async with httpx.AsyncClient(timeout=120) as http:
        async with http.stream("POST", f"{url}/completions", json=running) as first:
            lines = first.aiter_lines()  # kept: a dropped line iterator closes the response
            await anext(lines)  # its first token came: it runs
            waiting = asyncio.create_task(
                http.post(f"{url}/completions", json={"model": "smollm2", "prompt": "Hi", "max_tokens": 1})
            )
            await _wait_for_metric(http, url, "tether_requests_waiting 1.0")  # the queue is full
            call = asyncio.create_task(
                backend.complete(LLMRequest("retry-prog", "n", prompt="Hi", max_tokens=2))
            )
            while not log:
                await asyncio.sleep(0.01)
            del lines
        # the running request's stream is closed: the server aborts it, the waiting one runs, the retry fits
        result = await call
        assert (await waiting).status_code == 200
    await backend.close()
    await client.aclose()
    assert result.completion_tokens == 2
    statuses = [status for _, status, _ in log]
    assert statuses[0] == 503 and statuses[-1] == 200 and set(statuses[:-1]) == {503}
    assert {after for _, status, after in log if status == 503} == {"1"}  # ServerConfig.retry_after_s
    waits = [retry - answer[0] for answer, retry in zip(log[:-1], sent[1:], strict=True)]
    assert len(sent) == len(log) and all(w >= 1.0 for w in waits), waits  # each retry waited the 1 s asked
    integrity(url)


async def test_the_planner_dispatches_tasks_while_its_plan_streams_from_tether_serve(url: str) -> None:
    from bench.agent_questions import make_questions
    from examples.agent_tools import AGENT_TOOLS, set_latency

    set_latency("none")
    question = make_questions(k=2, n=1, seed=0)[0]
    trace = MemoryTraceSink()
    backend = TimedBackend(url, "smollm2", clock=time.time)  # the trace's clock
    planner = Planner(
        AGENT_TOOLS,
        model=None,
        backend=backend,
        trace=trace,
        constrained=True,
        max_replans=0,
        planner_max_tokens=96,
        joiner_max_tokens=48,
    )
    async with planner:
        result = await planner.run(question.text)
    await backend.close()
    assert backend.tether_server is True  # found from /v1/models, so hints went with every call
    (plan,) = result.plans  # grammar-constrained by the server: the plan parsed
    assert plan and all(t.tool in {x.name for x in AGENT_TOOLS} | {"join"} for t in plan)
    tool_starts = sorted(e.start or e.ts for e in trace.of_kind("tool_call"))
    assert tool_starts, "no task of the plan ran"
    assert tool_starts[0] < backend.stream_ends[0]  # the first task ran before the plan's stream ended
    assert [c.role for c in result.llm_calls] == ["planner", "joiner"]
    assert all(c.prompt_tokens > 0 and c.completion_tokens > 0 for c in result.llm_calls)
    report = integrity(url)
    assert report["kv_blocks"]["pinned"] == 0  # every program's end released its pins
