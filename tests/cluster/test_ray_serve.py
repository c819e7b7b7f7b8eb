"""``tether serve --replicas 2`` on a local Ray cluster (real Ray Serve, real replicas, the ``tiny`` model): the
OpenAI routes through the ingress, program affinity, a replica killed mid-request, and Ray's own prefix router."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.server.serve import ROOT, integrity, metric
from tether.runtime.bench.process import serve_process

pytest.importorskip("ray.serve")
pytestmark = pytest.mark.slow  # a local Ray cluster per module fixture (about 40 s to start here)

ENGINE = ("--model", "tiny", "--threads", "1", "--num-kv-blocks", "256", "--max-model-len", "4096")


def _cluster(router: str, trace_dir: str) -> Iterator[str]:
    args = ("--replicas", "2", "--router", router, *ENGINE, "--trace-dir", trace_dir)
    return serve_process(*args, timeout_s=240.0, cwd=ROOT)


@pytest.fixture(scope="module")
def traces() -> str:
    return tempfile.mkdtemp(prefix="tether-cluster-runs-")


@pytest.fixture(scope="module")
def cluster(traces: str) -> Iterator[str]:
    with _cluster("program", traces) as url:
        yield url


def _replicas(url: str) -> list[dict]:
    return httpx.get(url.removesuffix("/v1") + "/replicas", timeout=30).json()["data"]


def _cluster_actions(traces: str) -> set[tuple[str, str]]:
    """The (action, program) of every ``cluster`` event recorded so far."""
    events = [
        json.loads(line)
        for run in Path(traces).iterdir()
        for line in (run / "events.jsonl").read_text().splitlines()
    ]
    return {(e["attrs"]["action"], e["program_id"]) for e in events if e["kind"] == "cluster"}


def _complete(url: str, pid: str, prompt: list[int], n: int = 3, timeout: float = 120) -> httpx.Response:
    body = {
        "model": "tiny",
        "prompt": prompt,
        "max_tokens": n,
        "min_tokens": n,
        "ignore_eos": True,
        "return_token_ids": True,
        "session_id": pid,
    }
    return httpx.post(f"{url}/completions", json=body, timeout=timeout)


def test_the_openai_routes_answer_through_the_ingress(cluster: str) -> None:
    client = openai.OpenAI(base_url=cluster, api_key="unused")
    reply = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=4
    )
    assert reply.usage.completion_tokens == 4
    chunks = list(
        client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=4, stream=True
        )
    )
    assert chunks[-1].choices[0].finish_reason == "length"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="tiny", messages=[])
    assert [m.id for m in client.models.list().data] == ["tiny"]
    assert metric(cluster, "tether_replicas") == 2
    assert metric(cluster, "tether_requests_total", 'endpoint="/v1/chat/completions",status="404"') == 1


def test_a_client_that_leaves_a_stream_frees_its_replica(cluster: str) -> None:
    body = {
        "model": "tiny",
        "prompt": list(range(50)),
        "max_tokens": 3000,
        "ignore_eos": True,
        "stream": True,
    }
    with httpx.stream("POST", f"{cluster}/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        next(response.iter_lines())
    deadline = time.monotonic() + 30
    while metric(cluster, "tether_requests_running") > 0:  # the replica's engine aborted it
        assert time.monotonic() < deadline, "the abandoned stream kept generating"
        time.sleep(0.2)
    integrity(cluster)


def test_a_client_that_disconnects_aborts_its_request_on_the_replica(cluster: str) -> None:
    body = {"model": "tiny", "prompt": list(range(30)), "max_tokens": 1800, "ignore_eos": True}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{cluster}/completions", json=body, timeout=1.5)
    left = time.monotonic()
    while metric(cluster, "tether_requests_running") > 0:
        assert time.monotonic() - left < 5.0, "the abandoned request kept generating"
        time.sleep(0.1)
    assert metric(cluster, "tether_requests_total", 'endpoint="/v1/completions",status="499"') == 1


def test_a_programs_turns_stay_on_its_replica_and_its_end_releases_the_pins(cluster: str) -> None:
    homes = {}
    for p in range(4):
        prompt = [p + 1] + list(range(100, 160))
        first = _complete(cluster, f"affine/{p}", prompt)
        second = _complete(
            cluster, f"affine/{p}", prompt + first.json()["choices"][0]["token_ids"] + [9] * 10
        )
        assert first.headers["x-tether-replica"] == second.headers["x-tether-replica"]
        assert second.json()["usage"]["prompt_tokens_details"]["cached_tokens"] >= 48
        homes[p] = first.headers["x-tether-replica"]
    assert metric(cluster, "tether_kv_blocks", 'state="pinned"') > 0
    for p in range(4):
        assert httpx.post(f"{cluster}/programs/affine%2F{p}/end", timeout=30).json()["known"] is True
    assert metric(cluster, "tether_kv_blocks", 'state="pinned"') == 0
    assert set(integrity(cluster)["replicas"]) == {r["replica_id"] for r in _replicas(cluster)}


def test_a_replay_runs_over_the_cluster(cluster: str) -> None:
    from tether.runtime.replay.driver import Arrivals
    from tether.runtime.replay.http import replay_endpoint
    from tether.runtime.replay.workload import load_workload

    slice_ = load_workload(ROOT / "examples/workloads/terminal_bench_slice.jsonl")[:6]  # bundled
    programs = [p.scaled(0.05, 0.05) for p in slice_]
    row = asyncio.run(replay_endpoint(cluster, programs, Arrivals.poisson(6, 2.0, 0)))
    assert row["programs"] == 6 and row["server_completions"] == row["turns"]  # each turn answered once
    assert row["pins_hit"] > 0 and row["replicas_lost"] == 0
    integrity(cluster)


def test_a_replica_killed_mid_request_costs_a_retry_not_the_turn(cluster: str, traces: str) -> None:
    prompt = list(range(200, 260))
    home = _complete(cluster, "victim", prompt).headers["x-tether-replica"]
    pid = next(r["pid"] for r in _replicas(cluster) if r["replica_id"] == home)
    retried = metric(cluster, "tether_turns_retried_total")

    async def long_turn_then_kill() -> httpx.Response:
        turn = asyncio.create_task(
            asyncio.to_thread(_complete, cluster, "victim", prompt + [5] * 8, 1500, 240)
        )
        await asyncio.sleep(1.5)
        os.kill(pid, signal.SIGKILL)
        return await turn

    reply = asyncio.run(long_turn_then_kill())
    assert reply.status_code == 200, reply.text
    assert reply.json()["usage"]["completion_tokens"] == 1500  # answered once, whole, elsewhere
    assert reply.headers["x-tether-replica"] != home
    assert metric(cluster, "tether_turns_retried_total") == retried + 1
    assert metric(cluster, "tether_replicas_lost_total") >= 1
    expected = {("turn_retried", "victim"), ("replica_lost", "_engine")}
    deadline = time.monotonic() + 15  # the trace writer flushes on its own thread
    while not expected <= _cluster_actions(traces):
        assert time.monotonic() < deadline, _cluster_actions(traces)
        time.sleep(0.2)
    deadline = time.monotonic() + 120  # Ray Serve replaces the replica
    while len(_replicas(cluster)) < 2:
        assert time.monotonic() < deadline, "the lost replica was not replaced in 120 s"
        time.sleep(1)
    assert _complete(cluster, "after", prompt).status_code == 200
    integrity(cluster)


def test_rays_prefix_router_keeps_a_shared_prefix_on_one_replica(traces: str) -> None:
    with _cluster("prefix", traces) as url:
        prompt = list(range(100, 200))  # tiny's vocabulary is 384 ids
        replies = [_complete(url, f"pre/{k}", prompt + [k]) for k in range(4)]
        assert [r.status_code for r in replies] == [200] * 4
        assert len({r.headers["x-tether-replica"] for r in replies}) == 1  # the prefix tree found the replica
        assert [r.json()["usage"]["prompt_tokens_details"]["cached_tokens"] for r in replies[1:]] == [96] * 3
        assert metric(url, "tether_cache_hit_tokens_total") == 3 * 96
        integrity(url)
