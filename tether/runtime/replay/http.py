"""Replays programs over HTTP against any OpenAI-compatible server (``tether replay --endpoint URL``).

Turns are built exactly as in-process replay builds them (``ReplayDriver``): turn k's prompt is turn k-1's
prompt + the token ids the server generated for it + ``new_input_tokens`` fresh seeded tokens, sent as a
token-id prompt to ``POST {base_url}/completions`` with ``max_tokens = min_tokens = output_tokens`` and
``ignore_eos``. Between turns the program waits the trace's tool seconds; arrivals are the same ``Arrivals``.

Every request carries the program's identity (``session_id``, ``prompt_cache_key``, header ``X-Session-Id``)
and a ``tether`` object: ``program_id``, ``turn`` and ``next_tool``. The trace's outputs are random token ids,
so the tool a turn's output "calls" cannot be parsed from it; the request carries the trace's answer instead.
The hints rule still holds: the Tether server reads ``next_tool`` only when the turn ends, where a server would
parse it from the output (in-process replay reveals it the same way, through ``TurnOutcome``), never at
admission. No request says it is the last (``last_turn``): a client does not know that before the output.
``remaining_turns`` is sent only with ``hints="oracle"``: the trace's true count, labelled ``+true-turns`` (the
same policy told more: not a bound). Other servers ignore the unknown fields.

A server that returns no ``choices[0].token_ids`` gets seeded random ids of the trace's output length appended
instead (counted as ``turns_without_token_ids``: its cache then sees prompts its own outputs did not make).
After a program's last turn, and after the tool that turn called (most trace programs end on a tool call),
``POST {base_url}/programs/{id}/end`` (a Tether extension; 404 / 405 from other servers are counted, not
raised). A program's completion time counts to its last output.
"""

from __future__ import annotations

import asyncio
import random
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import httpx

from tether.hints import ProgramHints
from tether.runtime.replay.driver import HINT_MODES, TRUE_TURNS, Arrivals, ReplayProgramRun, extend_prompt
from tether.runtime.replay.runner import jct_figures
from tether.runtime.replay.workload import TraceProgram, Turn


def refuse_compiled(programs: Iterable[TraceProgram]) -> None:
    """A ``ValueError`` naming the first compiled program: its forked calls and static hints replay in process
    only."""
    compiled = next((p.program_id for p in programs if p.compiled), None)
    if compiled is not None:
        raise ValueError(
            f"program {compiled!r} is compiled (forked calls, static hints): replay it in process "
            "(tether replay without --endpoint)"
        )


class ReplayHTTPError(RuntimeError):
    """A request failed (status >= 400 or no connection); names the program, the turn (``None``: the end call
    or a request outside any program), the HTTP status (``None``: no response) and the server's message."""

    def __init__(self, program_id: str | None, turn: int | None, status: int | None, message: str) -> None:
        self.program_id, self.turn, self.status, self.message = program_id, turn, status, message
        if program_id is None:
            where = "replay"
        else:
            where = f"program {program_id!r} " + ("end" if turn is None else f"turn {turn}")
        super().__init__(f"{where}: {'no response' if status is None else f'HTTP {status}'}: {message}")


class ReplayOutputError(ReplayHTTPError):
    """A response succeeded but does not fit the trace (wrong output length, prompt count or shape)."""


@dataclass
class HTTPProgramRun(ReplayProgramRun):
    """A program's run over HTTP; ``arrival`` and ``finish`` are seconds since the replay started."""

    cache_hit_tokens: int = 0
    turns_with_cached_tokens: int = 0  # turns whose usage reported prompt_tokens_details.cached_tokens
    turns_without_token_ids: int = 0
    end_unsupported: bool = False  # the server answered 404 / 405 to the end call


def make_client(api_key: str | None = None, timeout_s: float = 3600.0, **kw) -> httpx.AsyncClient:
    """One client for every program: no connection limit, a timeout long enough for a turn under load."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    return httpx.AsyncClient(
        headers=headers, limits=limits, timeout=httpx.Timeout(timeout_s, connect=30.0), **kw
    )


async def served_model(client: httpx.AsyncClient, base_url: str) -> str:
    """The first model id of ``GET {base_url}/models``."""
    resp = await _send(client.get(f"{base_url.rstrip('/')}/models"), None, None)
    data = _json(resp, None, None).get("data") or []
    if not data or not isinstance(data[0], dict) or "id" not in data[0]:
        raise ReplayOutputError(None, None, resp.status_code, f"GET {base_url}/models lists no model")
    return str(data[0]["id"])


class HTTPReplayDriver:
    """Replays ``programs`` against ``base_url`` (``http://host:port/v1``); ``run()`` returns one
    ``HTTPProgramRun`` per program, in the order given. Token ids are the in-process driver's for the same
    ``seed`` and ``vocab``."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        model: str,
        programs: list[TraceProgram],
        arrivals: Arrivals,
        *,
        seed: int = 0,
        vocab: int = 256,
        hints: str = "online",
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        if hints not in HINT_MODES:
            raise ValueError(f"hints must be one of {HINT_MODES}, got {hints!r}")
        refuse_compiled(programs)
        self.client, self.base_url, self.model = client, base_url.rstrip("/"), model
        self.programs, self.arrivals = programs, arrivals
        self.seed, self.vocab, self.hints = seed, vocab, hints
        self.on_progress = on_progress
        self._start = 0.0
        self._done = 0

    async def run(self) -> list[HTTPProgramRun]:
        self._start = time.perf_counter()
        runs = [HTTPProgramRun(p, 0.0, self.seed * 1_000_003 + i) for i, p in enumerate(self.programs)]
        if self.arrivals.concurrency is not None:
            pending = iter(runs)

            async def worker() -> None:
                for run in pending:  # shared: each worker takes the next program when its own one finishes
                    run.arrival = self._now()
                    await self._program(run)

            await _all(worker() for _ in range(min(self.arrivals.concurrency, len(runs))))
        else:
            assert self.arrivals.times is not None and len(self.arrivals.times) >= len(runs)
            await _all(self._arrive(run, t) for run, t in zip(runs, self.arrivals.times))
        return runs

    def _now(self) -> float:
        return time.perf_counter() - self._start

    async def _arrive(self, run: HTTPProgramRun, at: float) -> None:
        run.arrival = at
        await asyncio.sleep(max(0.0, at - self._now()))
        await self._program(run)

    async def _program(self, run: HTTPProgramRun) -> None:
        turns = run.program.turns
        for k, turn in enumerate(turns):
            extend_prompt(run.context, run.program, k, run.seed, self.vocab)
            run.context.extend(await self._turn(run, k, turn))
            run.prompt_tokens += turn.prompt_tokens
            run.turn = k + 1
            if k == len(turns) - 1:
                run.finish = self._now()  # the completion time counts to the last output, as in-process
            await asyncio.sleep(turn.wait_seconds)  # the tool the turn called; after the last, then the end
        self._done += 1
        if self.on_progress:
            self.on_progress(self._done, len(self.programs))
        await self._end(run)

    def request_body(self, run: HTTPProgramRun, k: int, turn: Turn) -> dict:
        pid = run.program.program_id
        remaining = run.program.num_turns - k - 1 if self.hints == "oracle" else None
        hints = ProgramHints(
            pid, k, next_tool=turn.tool, remaining_turns=remaining
        )  # never last_turn: see above
        return {
            "model": self.model,
            "prompt": list(run.context),
            "max_tokens": turn.output_tokens,
            "min_tokens": turn.output_tokens,
            "ignore_eos": True,
            "temperature": 0,
            "return_token_ids": True,
            "session_id": pid,
            "prompt_cache_key": pid,
            "tether": hints.to_wire(),
        }

    async def _turn(self, run: HTTPProgramRun, k: int, turn: Turn) -> list[int]:
        """Sends turn ``k``; returns the output token ids to append to the context."""
        pid = run.program.program_id
        body = self.request_body(run, k, turn)
        url = f"{self.base_url}/completions"
        resp = await _send(self.client.post(url, json=body, headers={"X-Session-Id": pid}), pid, k)
        doc = _json(resp, pid, k)
        _count_usage(run, k, doc.get("usage") or {}, resp.status_code)
        try:
            ids = doc["choices"][0].get("token_ids")
        except (KeyError, IndexError, TypeError, AttributeError):
            raise ReplayOutputError(pid, k, resp.status_code, "the response has no choices[0]") from None
        if ids is None:
            run.turns_without_token_ids += 1
            rng = random.Random(f"{run.seed}/{k}/output")
            return [rng.randrange(self.vocab) for _ in range(turn.output_tokens)]
        if not isinstance(ids, list) or not all(isinstance(t, int) for t in ids):
            raise ReplayOutputError(
                pid, k, resp.status_code, f"token_ids is not a list of ints: {ids!r:.200}"
            )
        if len(ids) != turn.output_tokens:
            msg = f"generated {len(ids)} token ids, the trace says {turn.output_tokens}"
            raise ReplayOutputError(pid, k, resp.status_code, msg)
        return ids

    async def _end(self, run: HTTPProgramRun) -> None:
        pid = run.program.program_id
        url = f"{self.base_url}/programs/{urllib.parse.quote(pid, safe='')}/end"
        try:
            await _send(self.client.post(url, headers={"X-Session-Id": pid}), pid, None)
        except ReplayHTTPError as exc:
            if exc.status not in (404, 405):
                raise
            run.end_unsupported = True


async def replay_endpoint(
    base_url: str,
    programs: list[TraceProgram],
    arrivals: Arrivals,
    *,
    model: str | None = None,
    api_key: str | None = None,
    label: str = "http",
    seed: int = 0,
    hints: str = "online",
    window: float = 0.0,
    on_progress: Callable[[int, int], None] | None = None,
    **client_kw,
) -> dict:
    """Replays ``programs`` against ``base_url`` and returns the result row. ``model`` ``None``: the first id
    the server lists. ``client_kw`` goes to ``httpx.AsyncClient`` (a test's ``transport``)."""
    t0 = time.perf_counter()
    async with make_client(api_key, **client_kw) as client:
        model = model or await served_model(client, base_url)
        driver = HTTPReplayDriver(
            client, base_url, model, programs, arrivals, seed=seed, hints=hints, on_progress=on_progress
        )
        before = await server_counters(client, base_url)
        runs = await driver.run()
        after = await server_counters(client, base_url)
    row = summarize_http(label, runs, base_url.rstrip("/"), window)
    if before is not None and after is not None:
        row.update(counter_delta(before, after))
    row["label"] = f"{label}{TRUE_TURNS}" if hints == "oracle" else label
    row["hints"] = hints
    row["served_model"] = model
    row["wall_s"] = time.perf_counter() - t0
    return row


SERVER_COUNTERS = {  # row key -> the Prometheus sample a Tether server (one, or a cluster) exposes
    "pins_created": 'tether_kv_pins_total{outcome="created"}',
    "pins_hit": 'tether_kv_pins_total{outcome="hit"}',
    "pins_expired": 'tether_kv_pins_total{outcome="expired"}',
    "pins_dropped": 'tether_kv_pins_total{outcome="dropped"}',
    "parked_pins": 'tether_kv_pins_total{outcome="parked"}',
    "server_completions": 'tether_requests_total{endpoint="/v1/completions",status="200"}',
    "replicas_lost": "tether_replicas_lost_total",
    "turns_retried": "tether_turns_retried_total",
    "turns_moved": "tether_turns_moved_total",
}


async def server_counters(client: httpx.AsyncClient, base_url: str) -> dict[str, float] | None:
    """The server's counters in ``SERVER_COUNTERS`` from ``GET /metrics`` beside ``/v1`` (a Tether server's);
    ``None`` when it has none (another server, or no ``/metrics``)."""
    root = base_url.rstrip("/").removesuffix("/v1")
    try:
        resp = await client.get(f"{root}/metrics")
    except httpx.HTTPError:
        return None
    if resp.status_code != 200:
        return None
    samples = {}
    for line in resp.text.splitlines():
        name, _, value = line.rpartition(" ")
        if name and not line.startswith("#"):
            samples[name] = value
    if SERVER_COUNTERS["pins_created"] not in samples:
        return None
    return {k: float(samples[v]) for k, v in SERVER_COUNTERS.items() if v in samples}


def counter_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float | int]:
    """What the run added to each counter, and the pin hit rate (pins hit / pins created)."""
    out: dict[str, float | int] = {k: int(after[k] - before.get(k, 0.0)) for k in after}
    created = out.get("pins_created", 0)
    out["pin_hit_rate"] = out.get("pins_hit", 0) / created if created else 0.0
    return out


def summarize_http(label: str, runs: list[HTTPProgramRun], endpoint: str, window: float = 0.0) -> dict:
    """One result row with ``summarize``'s JCT keys. ``cache_hit_tokens`` is left out when no turn's usage
    reported ``cached_tokens``; a Tether server's pin counts (and a cluster's losses, retries and moves) are added
    by ``replay_endpoint`` from its ``/metrics`` (``SERVER_COUNTERS``), measured over the run."""
    makespan = max(r.finish for r in runs if r.finish is not None)
    turns = sum(r.program.num_turns for r in runs)
    with_cached = sum(r.turns_with_cached_tokens for r in runs)
    row = {"policy": label, "endpoint": endpoint, **jct_figures(runs, makespan, window)}
    row["prompt_tokens"] = sum(r.prompt_tokens for r in runs)
    if with_cached:
        row["cache_hit_tokens"] = sum(r.cache_hit_tokens for r in runs)
    row["turns"] = turns
    row["turns_without_cached_tokens"] = turns - with_cached
    row["turns_without_token_ids"] = sum(r.turns_without_token_ids for r in runs)
    row["program_ends_unsupported"] = sum(r.end_unsupported for r in runs)
    return row


def _count_usage(run: HTTPProgramRun, k: int, usage: dict, status: int) -> None:
    """Adds a turn's ``cached_tokens``; the server's prompt count must be the one replay sent."""
    turn = run.program.turns[k]
    counted = usage.get("prompt_tokens")
    if counted is not None and counted != turn.prompt_tokens:
        msg = f"the server counted {counted} prompt tokens, replay sent {turn.prompt_tokens}"
        raise ReplayOutputError(run.program.program_id, k, status, msg)
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached is not None:
        run.cache_hit_tokens += int(cached)
        run.turns_with_cached_tokens += 1


async def _send(request: Awaitable[httpx.Response], pid: str | None, turn: int | None) -> httpx.Response:
    try:
        resp = await request
    except httpx.HTTPError as exc:
        raise ReplayHTTPError(pid, turn, None, f"{type(exc).__name__}: {exc}") from exc
    if resp.status_code >= 400:
        raise ReplayHTTPError(pid, turn, resp.status_code, _error_message(resp))
    return resp


def _json(resp: httpx.Response, pid: str | None, turn: int | None) -> dict:
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise ReplayOutputError(pid, turn, resp.status_code, f"not a JSON object: {resp.text[:200]!r}")
    return doc


def _error_message(resp: httpx.Response) -> str:
    """OpenAI's ``{"error": {"message"}}``, older vLLM's ``{"message"}``, FastAPI's ``{"detail"}``, or the text."""
    try:
        doc = resp.json()
    except ValueError:
        return resp.text[:500] or resp.reason_phrase
    if isinstance(doc, dict):
        err = doc.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        for key in ("message", "detail", "error"):
            if doc.get(key):
                return str(doc[key])
    return str(doc)[:500]


async def _all(coros: Iterable[Awaitable[None]]) -> None:
    """Runs every coroutine; the first error cancels the rest and is raised as is."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
