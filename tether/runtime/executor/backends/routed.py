"""``RoutedBackend``: one program's LLM calls spread over several servers (vLLM, SGLang, ``tether serve``, each an
``OpenAIBackend``) by a cluster router (``tether/runtime/cluster/routers.py``).

In front of servers it does not run, the router knows what a client knows: the program id, the prompt (its text,
matched as UTF-8 bytes in 16-byte blocks by the ``prefix`` rule), and the calls it has in flight on each server
(its queue). A turn moved off its program's server (``program`` router, overload) releases the program there
(``end_program``); a program's end reaches every server it ran on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from tether.runtime.cluster.replicas import ReplicaStats, RouteRequest
from tether.runtime.cluster.routers import Router
from tether.runtime.executor.llm import LLMBackend, LLMDelta, LLMRequest, LLMResult, stream_llm


def prompt_key(request: LLMRequest) -> tuple[int, ...]:
    """What prefixes are matched on: the prompt, or the messages' contents in order, as UTF-8 bytes."""
    if request.prompt is not None:
        text = request.prompt
    else:
        text = "".join(str(m.get("content") or "") for m in request.messages or ())
    return tuple(text.encode())


class RoutedBackend:
    name = "routed"

    def __init__(self, backends: Mapping[str, LLMBackend], router: Router) -> None:
        """``backends``: the servers by name (a URL); ``router``: which one each call goes to."""
        if not backends:
            raise ValueError("RoutedBackend needs at least one backend")
        self.backends = dict(backends)
        self.router = router
        self._in_flight = dict.fromkeys(self.backends, 0)
        self._touched: dict[str, set[str]] = {}  # program -> the servers it ran on

    async def _choose(self, request: LLMRequest) -> str:
        stats = {name: ReplicaStats(name, queue_len=n) for name, n in self._in_flight.items()}
        route = RouteRequest(request.program_id, prompt_key(request))
        decision = self.router.route(route, stats)
        self.router.routed(route, decision.replica_id)
        if decision.moved_from is not None:
            await self.backends[decision.moved_from].end_program(request.program_id)
        self._touched.setdefault(request.program_id, set()).add(decision.replica_id)
        return decision.replica_id

    async def complete(self, request: LLMRequest) -> LLMResult:
        name = await self._choose(request)
        self._in_flight[name] += 1
        try:
            return await self.backends[name].complete(request)
        finally:
            self._in_flight[name] -= 1

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMDelta]:
        name = await self._choose(request)
        self._in_flight[name] += 1
        try:
            async for delta in stream_llm(self.backends[name], request):
                yield delta
        finally:
            self._in_flight[name] -= 1

    async def end_program(self, program_id: str) -> None:
        self.router.ended(program_id)
        for name in sorted(self._touched.pop(program_id, ())):
            await self.backends[name].end_program(program_id)

    async def close(self) -> None:
        for backend in self.backends.values():
            await backend.close()
