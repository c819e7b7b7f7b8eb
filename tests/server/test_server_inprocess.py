"""The real app in process (no socket): the ``tether`` object's hints reach the engine; ``/metrics`` has the
per-request latency and token histograms."""

from __future__ import annotations

import httpx

from tether.runtime.engine.async_engine import AsyncEngine
from tether.runtime.engine.config import EngineConfig
from tether.runtime.server.app import create_app
from tether.runtime.server.outcome import TurnOutcomes
from tether.runtime.server.serving import ServerConfig
from tether.tools.durations import ToolDurationStats


async def test_prefix_group_in_the_tether_object_reaches_the_engine() -> None:
    outcomes = TurnOutcomes(ToolDurationStats())
    engine = await AsyncEngine.create(
        EngineConfig(model="tiny", num_kv_blocks=64, policy="tether", enforce_eager=True),
        turn_outcome=outcomes.outcome,
    )
    try:
        app = create_app(engine, ServerConfig(("tiny",)), outcomes)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            body = {"model": "tiny", "prompt": list(range(40)), "max_tokens": 2, "session_id": "p"}
            body["tether"] = {"prefix_group": "shared-preamble", "next_tools": ["search"]}
            response = await client.post("/v1/completions", json=body)
            assert response.status_code == 200, response.text
        state = await engine.call(lambda e: e.programs.programs.get("p"))
        assert state is not None and state.prefix_groups == {"shared-preamble"}
        await engine.call(lambda e: e.check_integrity())
    finally:
        await engine.close()


async def test_metrics_have_the_request_histograms() -> None:
    outcomes = TurnOutcomes(ToolDurationStats())
    engine = await AsyncEngine.create(
        EngineConfig(model="tiny", num_kv_blocks=64, enforce_eager=True), turn_outcome=outcomes.outcome
    )
    try:
        app = create_app(engine, ServerConfig(("tiny",)), outcomes)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            for n in (5, 9):
                body = {"model": "tiny", "prompt": list(range(30)), "max_tokens": n, "ignore_eos": True}
                assert (await client.post("/v1/completions", json=body)).status_code == 200
            text = (await client.get("/metrics")).text
        samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
        assert float(samples["tether_request_generation_tokens_sum"]) == 14
        assert float(samples["tether_request_prompt_tokens_sum"]) == 60
        assert float(samples["tether_inter_token_latency_seconds_count"]) == 4 + 8  # one per interval
        for name in ("time_to_first_token", "request_queue_time", "e2e_request_latency"):
            assert float(samples[f"tether_{name}_seconds_count"]) == 2
            assert float(samples[f"tether_{name}_seconds_sum"]) >= 0
        e2e, ttft = (
            float(samples[f"tether_{k}_seconds_sum"]) for k in ("e2e_request_latency", "time_to_first_token")
        )
        assert e2e >= ttft > 0
    finally:
        await engine.close()


async def test_metrics_compare_tool_time_predictions_with_actuals() -> None:
    """A program's turns say which tool runs next; the pause to its next request is the tool's time, set against
    what the statistics predicted when the pause began: first the exponential prior (mean 1 s, p95 -ln 0.05 s),
    then the one observation so far (2 s)."""
    now = [0.0]
    outcomes = TurnOutcomes(ToolDurationStats(), clock=lambda: now[0])
    engine = await AsyncEngine.create(
        EngineConfig(model="tiny", num_kv_blocks=64, enforce_eager=True), turn_outcome=outcomes.outcome
    )
    try:
        app = create_app(engine, ServerConfig(("tiny",)), outcomes)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            for t in (0.0, 2.0, 7.0):
                now[0] = t
                body = {"model": "tiny", "prompt": list(range(30)), "max_tokens": 2, "session_id": "p"}
                body["tether"] = {"next_tools": ["search"]}
                assert (await client.post("/v1/completions", json=body)).status_code == 200
            text = (await client.get("/metrics")).text
        samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
        assert float(samples["tether_tool_time_seconds_count"]) == 2
        assert float(samples["tether_tool_time_seconds_sum"]) == 2.0 + 5.0
        assert float(samples["tether_tool_time_predicted_seconds_sum"]) == 1.0 + 2.0
        assert float(samples["tether_tool_time_actual_over_predicted_sum"]) == 2.0 + 2.5
        assert float(samples['tether_tool_time_predictions_total{p95="within"}']) == 1  # 2 s <= 3.0 s
        assert float(samples['tether_tool_time_predictions_total{p95="beyond"}']) == 1  # 5 s > 2 s
        await engine.call(lambda e: e.check_integrity())
    finally:
        await engine.close()
