"""HTTP replay against a fake OpenAI-compatible server (``httpx.MockTransport``): request bodies, identity,
hints per mode, the end call, the fallback without token ids, typed errors and the result row."""

from __future__ import annotations

import json
import random
import time

import httpx
import pytest

from tests.replay.test_replay import program
from tether.runtime.replay.driver import Arrivals
from tether.runtime.replay.http import (
    HTTPReplayDriver,
    ReplayHTTPError,
    ReplayOutputError,
    make_client,
    replay_endpoint,
    served_model,
    summarize_http,
)
from tether.runtime.replay.report import format_table

BASE = "http://fake/v1"
PROGRAMS = [
    program(
        "swe/a#1", [(0, 5, "bash", 0.2), (7, 4, "edit", 0.05), (3, 6, None, None)], first_prompt=40
    ).scaled(1.0, 0.01),
    program("swe/b", [(0, 3, "bash", 0.5), (20, 2, "bash", 0.3)], first_prompt=70).scaled(1.0, 0.01),
]
TOTAL_PROMPT = sum(t.prompt_tokens for p in PROGRAMS for t in p.turns)  # 40+52+59 + 70+93 = 314
CACHE_HITS = sum(t.prompt_tokens - t.new_input_tokens for p in PROGRAMS for t in p.turns[1:])  # 45+56+73


class FakeServer:
    """Completions whose output ids are 1000 + position (never a replay input id, those are < 256); cached
    tokens are the common prefix with the session's previous prompt + output."""

    def __init__(self, token_ids: bool = True, cached: bool = True, fail: tuple[str, int] | None = None):
        self.token_ids, self.cached, self.fail = token_ids, cached, fail
        self.end_status = 200
        self.bodies: dict[str, list[dict]] = {}
        self.ends: list[bytes] = []
        self.end_times: dict[bytes, float] = {}
        self.completed_at: dict[str, float] = {}  # a session's latest completion request
        self.headers: list[httpx.Headers] = []
        self._last: dict[str, list[int]] = {}
        self.metrics: list[str] = []  # /metrics answers in turn (a Tether server's); none: 404

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.headers.append(request.headers)
        path = request.url.raw_path.decode()
        if path == "/metrics":
            return httpx.Response(200, text=self.metrics.pop(0)) if self.metrics else httpx.Response(404)
        if path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [{"id": "fake-model"}]})
        if path.startswith("/v1/programs/"):
            self.ends.append(request.url.raw_path)
            self.end_times[request.url.raw_path] = time.monotonic()
            return httpx.Response(self.end_status, json={})
        assert path == "/v1/completions"
        body = json.loads(request.content)
        self.completed_at[request.headers["X-Session-Id"]] = time.monotonic()
        return self._complete(body, request.headers["X-Session-Id"])

    def _complete(self, body: dict, session: str) -> httpx.Response:
        self.bodies.setdefault(session, []).append(body)
        if self.fail == (body["session_id"], body["tether"]["turn"]):
            return httpx.Response(400, json={"error": {"message": "prompt too long", "type": "invalid"}})
        prompt = body["prompt"]
        out = [1000 + len(prompt) + i for i in range(body["max_tokens"])]
        prev = self._last.get(session, [])
        hit = next((i for i, (a, b) in enumerate(zip(prompt, prev)) if a != b), min(len(prompt), len(prev)))
        self._last[session] = prompt + out
        choice = {"index": 0, "text": "", "finish_reason": "length"}
        if self.token_ids:
            choice["token_ids"] = out
        usage = {"prompt_tokens": len(prompt), "completion_tokens": len(out)}
        if self.cached:
            usage["prompt_tokens_details"] = {"cached_tokens": hit}
        return httpx.Response(200, json={"choices": [choice], "usage": usage})


async def replay(server: FakeServer, hints: str = "online", arrivals: Arrivals | None = None, **kw):
    arrivals = arrivals or Arrivals(times=(0.0, 0.0))
    async with make_client(transport=httpx.MockTransport(server)) as client:
        driver = HTTPReplayDriver(client, BASE, "m", PROGRAMS, arrivals, seed=3, hints=hints, **kw)
        return await driver.run()


def fresh_input(i: int, k: int, n: int, seed: int = 3) -> list[int]:
    """The in-process driver's seeded input tokens for program ``i``, turn ``k``."""
    rng = random.Random((seed * 1_000_003 + i) * 7919 + k)
    return [rng.randrange(256) for _ in range(n)]


async def test_prompts_grow_by_exactly_the_output_and_the_new_input():
    server = FakeServer()
    runs = await replay(server)
    for i, p in enumerate(PROGRAMS):
        bodies = server.bodies[p.program_id]
        assert [b["tether"]["turn"] for b in bodies] == list(range(p.num_turns))
        assert bodies[0]["prompt"] == fresh_input(i, 0, p.turns[0].prompt_tokens)
        for k in range(1, p.num_turns):
            prev, turn = bodies[k - 1]["prompt"], p.turns[k]
            out = [1000 + len(prev) + j for j in range(p.turns[k - 1].output_tokens)]
            assert bodies[k]["prompt"] == prev + out + fresh_input(i, k, turn.new_input_tokens)
            assert len(bodies[k]["prompt"]) == turn.prompt_tokens
        assert runs[i].finish is not None and runs[i].turn == p.num_turns
        assert runs[i].turns_without_token_ids == 0 and not runs[i].end_unsupported


async def test_identity_and_online_hints_in_every_request():
    server = FakeServer()
    await replay(server)
    a = server.bodies["swe/a#1"]
    assert a[0] == {
        "model": "m",
        "prompt": a[0]["prompt"],
        "max_tokens": 5,
        "min_tokens": 5,
        "ignore_eos": True,
        "temperature": 0,
        "return_token_ids": True,
        "session_id": "swe/a#1",
        "prompt_cache_key": "swe/a#1",
        "tether": {"program_id": "swe/a#1", "turn": 0, "next_tools": ["bash"]},
    }
    assert [b["tether"] for b in a[1:]] == [
        {"program_id": "swe/a#1", "turn": 1, "next_tools": ["edit"]},
        {"program_id": "swe/a#1", "turn": 2},
    ]
    # b ends on a tool call: its last turn looks like any other (no last_turn), and its end follows the tool
    assert server.bodies["swe/b"][1]["tether"] == {"program_id": "swe/b", "turn": 1, "next_tools": ["bash"]}
    assert sorted(server.ends) == [b"/v1/programs/swe%2Fa%231/end", b"/v1/programs/swe%2Fb/end"]
    assert "authorization" not in server.headers[0]


async def test_oracle_adds_the_true_remaining_turns():
    server = FakeServer()
    await replay(server, hints="oracle")
    assert [b["tether"]["remaining_turns"] for b in server.bodies["swe/a#1"]] == [2, 1, 0]
    assert [b["tether"]["remaining_turns"] for b in server.bodies["swe/b"]] == [1, 0]


async def test_without_token_ids_replay_appends_seeded_tokens_and_counts_the_turns():
    first, second = FakeServer(token_ids=False, cached=False), FakeServer(token_ids=False, cached=False)
    runs = await replay(first)
    await replay(second)
    assert first.bodies == second.bodies  # deterministic
    for p in PROGRAMS:
        bodies = first.bodies[p.program_id]
        for k in range(1, p.num_turns):
            assert bodies[k]["prompt"][: len(bodies[k - 1]["prompt"])] == bodies[k - 1]["prompt"]
            assert len(bodies[k]["prompt"]) == p.turns[k].prompt_tokens
    assert [r.turns_without_token_ids for r in runs] == [3, 2]
    row = summarize_http("vllm", runs, BASE)
    assert row["turns_without_token_ids"] == 5 and row["turns_without_cached_tokens"] == 5
    assert "cache_hit_tokens" not in row


async def test_a_400_names_program_turn_status_and_message():
    server = FakeServer(fail=("swe/b", 1))
    with pytest.raises(ReplayHTTPError) as info:
        await replay(server)
    err = info.value
    assert (err.program_id, err.turn, err.status, err.message) == ("swe/b", 1, 400, "prompt too long")
    assert str(err) == "program 'swe/b' turn 1: HTTP 400: prompt too long"


async def test_wrong_output_length_and_no_connection_are_typed():
    def short(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"choices": [{"token_ids": [1, 2]}], "usage": {}})

    with pytest.raises(
        ReplayOutputError, match=r"program 'swe/a#1' turn 0: HTTP 200: generated 2 token ids, the"
    ):
        await replay(short, arrivals=Arrivals(concurrency=1))  # type: ignore[arg-type]

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ReplayHTTPError) as info:
        await replay(down, arrivals=Arrivals(concurrency=1))  # type: ignore[arg-type]
    assert (info.value.program_id, info.value.turn, info.value.status) == ("swe/a#1", 0, None)


async def test_end_call_404_is_counted_and_500_raised():
    server = FakeServer()
    server.end_status = 404
    runs = await replay(server)
    assert summarize_http("x", runs, BASE)["program_ends_unsupported"] == 2
    server = FakeServer()
    server.end_status = 500
    with pytest.raises(ReplayHTTPError, match=r"program 'swe/(a#1|b)' end: HTTP 500"):
        await replay(server)


async def test_closed_loop_runs_one_program_after_the_other():
    server = FakeServer()
    runs = await replay(server, arrivals=Arrivals(concurrency=1))
    assert runs[0].arrival < runs[0].finish <= runs[1].arrival < runs[1].finish
    # b's end waits for the tool its last turn called (0.3 s scaled by 0.01)
    assert server.end_times[b"/v1/programs/swe%2Fb/end"] - server.completed_at["swe/b"] >= 0.003


async def test_result_row_has_the_jct_keys_and_prints():
    server = FakeServer()
    transport = httpx.MockTransport(server)
    row = await replay_endpoint(
        BASE,
        PROGRAMS,
        Arrivals(times=(0.0, 0.01)),
        api_key="k",
        label="vllm",
        hints="oracle",
        transport=transport,
    )
    assert server.headers[0]["authorization"] == "Bearer k"
    assert row["served_model"] == "fake-model" and server.bodies["swe/b"][0]["model"] == "fake-model"
    assert (row["policy"], row["label"], row["hints"], row["endpoint"]) == (
        "vllm",
        "vllm+true-turns",
        "oracle",
        BASE,
    )
    assert (row["programs"], row["programs_measured"], row["turns"]) == (2, 2, 5)
    assert row["prompt_tokens"] == TOTAL_PROMPT == 314
    assert row["cache_hit_tokens"] == CACHE_HITS == 174
    assert row["turns_without_cached_tokens"] == row["turns_without_token_ids"] == 0
    assert 0 < row["p50_jct_s"] <= row["p90_jct_s"] <= row["makespan_s"]
    assert row["throughput_programs_per_min"] == pytest.approx(120.0 / row["makespan_s"])
    assert "prefill_tokens_computed" not in row and "pins_created" not in row
    line = format_table([row]).splitlines()[2].split()
    assert line[0] == "vllm+true-turns" and line[2] == "1.000"
    assert line[7:] == [f"{(314 - 174) / 314:.3f}", "-", "-", "-"]


def _tether_metrics(created: int, hit: int, completions: int, lost: int) -> str:
    return "\n".join(
        [
            "# HELP tether_kv_pins_total KV pins by outcome",
            f'tether_kv_pins_total{{outcome="created"}} {created}.0',
            f'tether_kv_pins_total{{outcome="hit"}} {hit}.0',
            f'tether_requests_total{{endpoint="/v1/completions",status="200"}} {completions}.0',
            f"tether_replicas_lost_total {lost}.0",
        ]
    )


async def test_a_tether_servers_pin_counts_over_the_run_join_the_row():
    server = FakeServer()
    server.metrics = [_tether_metrics(10, 4, 20, 0), _tether_metrics(13, 6, 25, 1)]
    row = await replay_endpoint(
        BASE, PROGRAMS, Arrivals(times=(0.0, 0.01)), transport=httpx.MockTransport(server)
    )
    assert (row["pins_created"], row["pins_hit"], row["server_completions"], row["replicas_lost"]) == (
        3,
        2,
        5,
        1,
    )
    assert row["pin_hit_rate"] == pytest.approx(2 / 3)
    assert "pins_expired" not in row  # the server exposed no such sample


async def test_served_model_is_the_first_listed():
    async with make_client(transport=httpx.MockTransport(FakeServer())) as client:
        assert await served_model(client, BASE) == "fake-model"


def test_the_progress_bar_shows_programs_their_rate_and_closes_at_the_total():
    import io

    from tether.runtime.replay.report import progress_printer

    stream = io.StringIO()
    show = progress_printer(stream)
    for done in range(4):
        show("tether", done, 3)
    show("tether", 0, 2)  # the next seed: a new bar
    show("tether", 2, 2)
    text = stream.getvalue()
    assert "tether: 100%" in text and "3/3" in text and "2/2" in text
    assert "program/s" in text
