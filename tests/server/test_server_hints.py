"""The ``tether`` object's hints reach the engine through the real app (in process, no socket)."""

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
