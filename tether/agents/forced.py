"""``ForcedBackend``: gold-forced decoding for the agents benchmark (docs/agents.md, "Benchmark").

It wraps the runtime's LLM backend. While a script is set (``expect(texts)``), each new LLM call (a new
``program_id/node_id``) takes the script's next text, and its request's grammar is replaced by
``literal_grammar(text)``, which admits only that text: the engine still renders the agent's real prompt,
prefills it (with its prefix cache), and decodes token by token under the grammar mask, streaming as usual;
only the choice of tokens is forced. A retry of a call (a later attempt) gets the same text. The finished
reply must be exactly the text (``ForcedScriptError`` otherwise), so a forced call can never pass off
something else as the reference. Without a script, requests pass through unchanged (the free mode).

    forced = ForcedBackend(rt.executor.llm); rt.executor.llm = forced
    forced.expect([plan_text, joiner_text]); await planner.run(question); forced.finish()
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import replace
from typing import Any

from tether.runtime.executor.errors import LLMBackendError
from tether.runtime.executor.llm import LLMBackend, LLMDelta, LLMRequest, LLMResult, stream_llm

MAX_TOKENS_MARGIN = 8


class ForcedScriptError(LLMBackendError):
    """A forced call with no reference text left, a reply that is not its reference text, or a script whose
    texts were not all used (``node`` is the call, or ``"script"``)."""


def literal_grammar(text: str) -> str:
    """EBNF (xgrammar's dialect) admitting exactly ``text``: one string literal, escaped as JSON escapes it
    (``\\"``, ``\\\\``, ``\\n``, ``\\uXXXX`` for other control characters; other characters as UTF-8)."""
    if not text:
        raise ValueError("text: a forced reply needs at least one character")
    return f"root ::= {json.dumps(text, ensure_ascii=False)}\n"


class ForcedBackend:
    """Implements ``StreamingLLMBackend`` over ``inner`` (see the module docstring). ``name`` is the inner
    backend's. ``forced`` lists ``(request_id, text)`` of every call forced under the current script."""

    def __init__(self, inner: LLMBackend) -> None:
        self.inner = inner
        self.name = inner.name
        self._script: deque[str] | None = None
        self._given: dict[tuple[str, str], str] = {}
        self.forced: list[tuple[str, str]] = []

    def expect(self, texts: Sequence[str]) -> None:
        """Force the next ``len(texts)`` new calls to decode ``texts``, in order."""
        for i, text in enumerate(texts):
            if not text:
                raise ValueError(f"texts[{i}]: a forced reply needs at least one character")
        self._script, self._given, self.forced = deque(texts), {}, []

    def finish(self, *, strict: bool = True) -> None:
        """End the script (requests pass through again); ``strict``: ``ForcedScriptError`` if some texts were
        not used."""
        left = list(self._script or ())
        self._script, self._given = None, {}
        if left and strict:
            raise ForcedScriptError("script", f"{len(left)} reference text(s) not decoded: {left[0][:60]!r}")

    @property
    def active(self) -> bool:
        return self._script is not None

    def force(self, request: LLMRequest) -> tuple[LLMRequest, str | None]:
        """The request to send (its grammar the call's reference text, ``max_tokens`` at least the text's UTF-8
        bytes: a token is at least one byte) and that text; the request unchanged and ``None`` without a script."""
        if self._script is None:
            return request, None
        key = (request.program_id, request.node_id)
        text = self._given.get(key)
        if text is None:
            if not self._script:
                raise ForcedScriptError(request.node_id, "no reference text left for this call")
            text = self._script.popleft()
            self._given[key] = text
        self.forced.append((request.request_id, text))
        tokens = max(request.max_tokens, len(text.encode()) + MAX_TOKENS_MARGIN)
        return replace(request, grammar=literal_grammar(text), max_tokens=tokens, tool_choice=None), text

    async def complete(self, request: LLMRequest) -> LLMResult:
        forced, text = self.force(request)
        return _checked(request, await self.inner.complete(forced), text)

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMDelta]:
        forced, text = self.force(request)
        async with aclosing(stream_llm(self.inner, forced)) as deltas:
            async for delta in deltas:
                if delta.result is not None:
                    _checked(request, delta.result, text)
                yield delta

    async def end_program(self, program_id: str) -> None:
        await self.inner.end_program(program_id)

    async def close(self) -> None:
        await self.inner.close()


def _checked(request: LLMRequest, result: LLMResult, text: str | None) -> LLMResult:
    if text is not None and result.text != text:
        raise ForcedScriptError(
            request.node_id,
            f"decoded {result.text[:80]!r} ({result.finish_reason}), not the reference {text[:80]!r}",
        )
    return result


def install_forced(runtime: Any) -> ForcedBackend:
    """Put a ``ForcedBackend`` between ``runtime``'s executor (an ``AgentRuntime``'s) and its LLM backend, before
    any program starts; ``runtime.backend`` stays the real one (the agents' local-engine checks read it)."""
    if runtime.executor.llm is None:
        raise ValueError("runtime: no LLM backend to force")
    if isinstance(runtime.executor.llm, ForcedBackend):
        return runtime.executor.llm
    forced = ForcedBackend(runtime.executor.llm)
    runtime.executor.llm = forced
    return forced
