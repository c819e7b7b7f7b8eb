"""The scenario both framework adapters are tested in: a real ``tether serve --model smollm2`` per policy with a
small KV cache, an agent whose tool runs while a background load of plain requests (no program) churns that
cache, and what the server recorded (its trace, ``/metrics``).

Sizes (blocks of 16 tokens): the agent's first turn is about 80 blocks (a long system prompt, so the second turn's
new tokens, its tool call and result, are under 10% of its prompt), each load request 17, the cache
``NUM_KV_BLOCKS``. The load passes more distinct blocks through the cache than it
holds, so a prefix nothing pins is evicted (``--policy vllm``); a pinned one leaves enough free for each load
request, so no memory pressure ever asks for the pin (``--policy tether``).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.server.serve import metric

NUM_KV_BLOCKS = 112
LOAD_REQUESTS = 8
LOAD_PROMPT_TOKENS = 256  # 8 x 16 blocks: more than the cache holds
TOOL_MIN_S = 1.0
MODEL = "smollm2"

_CITIES = ("Paris", "Lyon", "Nice", "Lille", "Nantes", "Bordeaux", "Toulouse", "Rennes", "Dijon", "Brest")
SYSTEM = "You answer questions about cities using the tools. Facts you may use:\n" + "\n".join(
    f"- {city} district {k}: open markets on day {k % 7 + 1}, trams every {4 + k % 5} minutes, museum {k}."
    for k in range(4)
    for city in _CITIES
)
QUESTION = "What's the weather like in Paris today?"


@dataclass(frozen=True)
class PolicyServer:
    """A running ``tether serve`` under ``policy``: its ``/v1`` URL and the trace folder of its run."""

    url: str
    policy: str
    trace_dir: Path

    def events(self) -> list[dict]:
        """Every trace event written so far (the writer flushes about every 0.1 s)."""
        (path,) = self.trace_dir.glob("*/events.jsonl")
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def events_until(self, since: int, done) -> list[dict]:
        """The events after the first ``since``, once ``done(events)`` holds (within 10 s)."""
        deadline = time.monotonic() + 10
        while True:
            events = self.events()[since:]
            if done(events) or time.monotonic() > deadline:
                return events
            time.sleep(0.1)

    def ended_by_client(self) -> float:
        """``tether_programs_ended_total{reason="client"}`` (absent until a first program ends: 0)."""
        try:
            return metric(self.url, "tether_programs_ended_total", 'reason="client"')
        except KeyError:
            return 0.0


class Load:
    """Plain ``/v1/completions`` requests (no program), each a prompt of distinct token ids, sent one after
    another on a thread of their own."""

    def __init__(self, url: str, seed: int) -> None:
        self.url = url
        self.rng = random.Random(seed)
        self.sent = 0

    def _send(self) -> None:
        with httpx.Client(timeout=120) as http:
            for _ in range(LOAD_REQUESTS):
                prompt = [self.rng.randrange(1000, 40000) for _ in range(LOAD_PROMPT_TOKENS)]
                body = {"model": MODEL, "prompt": prompt, "max_tokens": 1, "temperature": 0}
                response = http.post(f"{self.url}/completions", json=body)
                response.raise_for_status()
                self.sent += 1

    def during_tool(self) -> float:
        """Start the load, sleep at least ``TOOL_MIN_S`` and until the load is done; the seconds slept: what a
        tool that outlasts the idle cache under load looks like to the server."""
        start = time.monotonic()
        thread = threading.Thread(target=self._send, daemon=True)
        thread.start()
        time.sleep(TOOL_MIN_S)
        thread.join(timeout=120)
        assert self.sent == LOAD_REQUESTS, "the load did not finish"
        return time.monotonic() - start


def chat_requests(events: list[dict]) -> Iterator[dict]:
    """The ``llm_queued`` events of chat requests (the load's are completions)."""
    for event in events:
        if event["kind"] == "llm_queued" and str(event["node_id"]).startswith("chatcmpl-"):
            yield event
