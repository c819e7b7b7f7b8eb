"""``ProgramRun``: one program in flight. Event-driven: a node starts the moment its last dependency
completes (a counter per node, decremented by each completing dependency; no polling, no levels).

    node completes ─► outputs[n] = value ─► for each dependent s: waiting[s] -= 1 ─► 0: start s
    node fails     ─► cancel every running node ─► release the program (KV pins) ─► wait() raises
    all complete   ─► render outputs ─► release the program ─► wait() returns ProgramResult
                      (a held run waits for ``seal()`` first; it may grow meanwhile)

Front-ends that build programs while they run (decorator agents, planners, ReAct) use ``hold``/``seal``,
``add_node(node, on_delta=...)``, ``node_future(node_id)`` and ``llm_result(node_id)`` (a call's tokens and time);
``tether.dag.refs.node_ref`` makes the references.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pydantic_core

from tether.dag.compiler import CompiledProgram, LLMHints, extend
from tether.dag.inputs import bind_inputs
from tether.dag.ir import LLMCall, ToolCall, ToolFailure
from tether.dag.refs import Ref, RefResolutionError, as_text, walk
from tether.hints import OutcomeReader
from tether.runtime.executor.errors import (
    ExecutorError,
    NodeFailedError,
    NoLLMBackendError,
    ProgramCancelledError,
    ReferenceResolutionError,
)
from tether.runtime.executor.llm import LLMResult
from tether.runtime.executor.steps import DeltaHook, Steps

if TYPE_CHECKING:
    from tether.runtime.executor.executor import Executor

log = logging.getLogger(__name__)
OUTPUT_PREVIEW_CHARS = 2000

NodeHook = Callable[["ProgramRun", str, Any], Awaitable[None]]


@dataclass(frozen=True)
class ProgramResult:
    """A finished run: the program's ``outputs`` and every node's value (typed: JSON values or models)."""

    program_id: str
    outputs: dict[str, Any]
    node_outputs: dict[str, Any]
    seconds: float


class ProgramRun:
    """Created by ``Executor.start``. ``wait()`` returns the ``ProgramResult`` or raises ``NodeFailedError``
    (naming the node and cause) / ``ProgramCancelledError``; cancelling ``wait()`` cancels the program.
    ``add_node`` grows the program while it runs; ``on_node_done(run, node_id, value)`` is awaited after
    each node and before its dependents start, so it may add nodes that depend on it.

    Held runs: a run started with ``hold=True`` (or ``hold()`` while it runs) does not end when its last
    node completes (it may have none at all): it ends after ``seal()``, once every node is done (at once
    when they already are). A failure or a cancel ends it whether held or not. After ``seal()``,
    ``add_node`` raises ``ExecutorError``; nodes already added still run.
    """

    def __init__(
        self,
        executor: Executor,
        compiled: CompiledProgram,
        inputs: Mapping[str, Any],
        program_id: str,
        on_node_done: NodeHook | None = None,
        *,
        hold: bool = False,
        on_delta: Mapping[str, DeltaHook] | None = None,
    ) -> None:
        self.id = program_id
        self.compiled = compiled
        self.program = compiled.program
        self.inputs = bind_inputs(self.program, inputs)
        self.outputs: dict[str, Any] = {}
        self.status = "running"
        self.error: BaseException | None = None
        self._executor = executor
        self._on_node_done = on_node_done
        self._steps = Steps(
            program_id, compiled, executor.tools, executor.llm, executor.trace, executor.tool_spec(compiled)
        )
        self._succ = {n: self._waits_on_me(n) for n in self.program.nodes}
        self._waiting = {n: len(self._waits_for(n)) for n in self.program.nodes}
        self._remaining = len(self.program.nodes)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._uses_llm = any(isinstance(n, LLMCall) for n in self.program.nodes.values())
        self._closing = False
        self._held = False
        self._sealed = False
        self._node_futures: dict[str, asyncio.Future[Any]] = {}
        self._on_delta: dict[str, DeltaHook] = dict(on_delta or {})
        self._after: dict[str, list[str]] = {}  # recorded deps a node does not read (``add_node(after=...)``)
        if hold:
            self.hold()
        self._start = time.perf_counter()
        self._started_at = time.time()
        self._future: asyncio.Future[ProgramResult] = asyncio.get_running_loop().create_future()

    # -- public ---------------------------------------------------------------------------------------------
    def begin(self) -> None:
        cp = self.compiled.critical_path
        graph = self.program.graph
        self._steps.emit(
            "program_start",
            None,
            {
                "program": self.program.name,
                "nodes": [self._node_doc(n) for n in self.compiled.order],
                "edges": [[u, v] for u, v in graph.edges],
                "critical_path_s": cp.seconds,
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.conversation.id": self.id,
            },
        )
        ready = [n for n in self.compiled.order if self._waiting[n] == 0]
        for n in ready:
            self._launch(n)
        if self._remaining == 0 and not self._held:
            self._finish_ok()

    def _waits_for(self, n: str) -> list[str]:
        """The nodes ``n`` starts after: its predecessors but the call that streamed it (``"stream"`` edges)."""
        graph = self.program.graph
        return [p for p in graph.predecessors(n) if graph.edges[p, n].get("kind") != "stream"]

    def _waits_on_me(self, n: str) -> list[str]:
        graph = self.program.graph
        return [s for s in graph.successors(n) if graph.edges[n, s].get("kind") != "stream"]

    def _node_doc(self, n: str) -> dict[str, Any]:
        node = self.program.nodes[n]
        return {
            "id": n,
            "kind": node.kind,
            "tool": node.tool if isinstance(node, ToolCall) else None,
            "deps": self._deps(n),
        }

    def _deps(self, n: str) -> list[str]:
        """What the trace draws ``n`` after: its dependencies, then the nodes it was added ``after``."""
        deps = list(self.program.graph.predecessors(n))
        return deps + [d for d in self._after.get(n, ()) if d not in deps]

    def record(self, kind: str, node_id: str, attrs: Mapping[str, Any], start: float | None = None) -> None:
        """Record a node event (``node_added``, ``node_start``, ``node_end``, ``node_error``, ``node_skipped``,
        ``node_cancelled``) in this run's trace for a node the run does not execute: work a front-end decides
        on its behalf (a planner's task it does not run: a task it needs failed) or a result it derives (an
        answer), so the run's DAG shows it. ``start``: when its span began (``time.time()``). ``ExecutorError``
        for another kind or a node id the program has (its events are the executor's)."""
        if not kind.startswith("node_"):
            raise ExecutorError(f"program {self.id!r}: record() writes node events, not {kind!r}")
        if node_id in self.program.nodes:
            raise ExecutorError(f"program {self.id!r}: node {node_id!r} is executed by the run: not recorded")
        self._steps.emit(kind, node_id, dict(attrs), start)

    async def wait(self) -> ProgramResult:
        try:
            return await asyncio.shield(self._future)
        except asyncio.CancelledError:
            if not self._future.done():
                self.cancel("the caller stopped waiting")
            raise

    @property
    def done(self) -> bool:
        return self._future.done()

    def cancel(self, reason: str = "cancelled") -> bool:
        """Cancel the program: running nodes are cancelled, nothing else starts. False if already ending."""
        if self._closing:
            return False
        self._shutdown(ProgramCancelledError(self.id, reason), "cancelled")
        return True

    @property
    def held(self) -> bool:
        """Whether the run waits for ``seal()`` before it can end."""
        return self._held

    @property
    def sealed(self) -> bool:
        return self._sealed

    def hold(self) -> None:
        """Keep the run open after its last node completes, until ``seal()``. The program must be built with
        ``may_grow=True`` (so no LLM call was told it is the last turn); ``ExecutorError`` otherwise, or when
        the run has ended or was sealed."""
        if self._closing or self._sealed:
            raise ExecutorError(f"program {self.id!r}: cannot hold a run that has ended or was sealed")
        if not self.program.may_grow:
            raise ExecutorError(
                f"program {self.id!r}: a held run grows, so its program needs may_grow=True "
                f"(Program(..., may_grow=True)); its hints would claim a last turn"
            )
        self._held = True

    def seal(self) -> None:
        """No more nodes: the run ends once every node added is done (now, if they are). Idempotent; a no-op
        on a run that has ended."""
        self._sealed = True
        self._held = False
        if not self._closing and self._remaining == 0:
            self._finish_ok()

    def node_future(self, node_id: str) -> asyncio.Future[Any]:
        """A future of the node's value (the one ``outputs`` gets), for a node added or still to be added.
        It raises the run's error when the run fails (``NodeFailedError``, naming the node at fault: this one
        or another) or is cancelled (``ProgramCancelledError``), and ``ExecutorError`` when the run ends
        without the node having been added. One future per node; cancelling it does not cancel the node."""
        fut = self._node_futures.get(node_id)
        if fut is not None:
            return fut
        fut = asyncio.get_running_loop().create_future()
        if node_id in self.outputs:
            fut.set_result(self.outputs[node_id])
        elif self._closing:
            fut.set_exception(self._missing_error(node_id))
        self._node_futures[node_id] = fut
        return fut

    def llm_result(self, node_id: str) -> LLMResult:
        """The ``LLMResult`` of a finished LLM call of this run: its successful attempt's, with ``usage.seconds``
        that attempt's wall time. It is there before the node's future resolves. ``ExecutorError`` for a
        node that is not an LLM call that has finished."""
        result = self._steps.llm_results.get(node_id)
        if result is None:
            raise ExecutorError(f"program {self.id!r}: node {node_id!r} is not a finished LLM call")
        return result

    def _missing_error(self, node_id: str) -> BaseException:
        if self.error is not None:
            return self.error
        return ExecutorError(f"program {self.id!r} ended without node {node_id!r} completing (never added)")

    def add_node(
        self,
        node: LLMCall | ToolCall,
        hints: LLMHints | None = None,
        *,
        on_delta: DeltaHook | None = None,
        after: Iterable[str] = (),
        streamed_from: str | None = None,
        outcome: OutcomeReader | None = None,
    ) -> None:
        """Add a node that depends only on nodes already in the program; it starts once they have completed
        (at once if they all have). ``DagError`` if it does not validate (the node is not added);
        ``ExecutorError`` when the run has ended or was sealed; ``NoLLMBackendError`` for an LLM call on an
        executor without a backend. ``on_delta`` streams an LLM call (each ``LLMDelta`` as it arrives).
        ``after``: node ids the trace draws this node after although it does not read them (recorded ones,
        ``record``); they are no dependencies. ``streamed_from``: the LLM call (of this run, running or done)
        whose streamed reply dispatched this node: an edge of the program's graph (kind ``"stream"``) that the
        node does not wait for, and its tool becomes that call's next tool. ``outcome``: for an LLM call,
        reads its reply when the turn ends (the tool the program then waits for: ``TurnOutcome``), what the
        local engine's program layer learns (``Steps.turn_outcome``). The node is added to the compiled
        program itself, so a program that grows must not be shared by concurrent runs."""
        if self._closing:
            raise ExecutorError(f"program {self.id!r} has ended; cannot add node {node.id!r}")
        if self._sealed:
            raise ExecutorError(f"program {self.id!r} was sealed; cannot add node {node.id!r}")
        if isinstance(node, LLMCall) and self._executor.llm is None:
            raise NoLLMBackendError(self.program.name, node.id)
        if on_delta is not None and not isinstance(node, LLMCall):
            raise ExecutorError(f"program {self.id!r}: node {node.id!r}: on_delta is for LLM calls only")
        if outcome is not None and not isinstance(node, LLMCall):
            raise ExecutorError(f"program {self.id!r}: node {node.id!r}: outcome is for LLM calls only")
        extend(self.compiled, node, hints, streamed_from=streamed_from)
        if on_delta is not None:
            self._on_delta[node.id] = on_delta
        if outcome is not None:
            self._steps.outcomes[node.id] = outcome
        preds = self._waits_for(node.id)
        for p in preds:
            self._succ[p].append(node.id)
        self._succ[node.id] = []
        self._waiting[node.id] = sum(1 for p in preds if p not in self.outputs)
        self._remaining += 1
        self._uses_llm = self._uses_llm or isinstance(node, LLMCall)
        self._after[node.id] = list(after)
        self._steps.emit("node_added", node.id, {"node": self._node_doc(node.id)})
        if self._waiting[node.id] == 0:
            self._launch(node.id)

    # -- nodes ----------------------------------------------------------------------------------------------
    def _launch(self, n: str) -> None:
        self._tasks[n] = asyncio.get_running_loop().create_task(self._run_node(n))

    async def _run_node(self, n: str) -> None:
        node = self.program.nodes[n]
        start = time.time()
        if self._steps.trace is not None:
            deps = self._deps(n)  # the DAG as it unfolds, edge by edge
            attrs = {
                "category": "node",
                "node_kind": node.kind,
                "level": self.compiled.levels.get(n),
                "deps": deps,
            }
            self._steps.emit("node_start", n, attrs)
        try:
            value = await self._execute(n, node)
            if self._on_node_done is not None:
                await self._on_node_done(self, n, value)
        except asyncio.CancelledError:
            self._steps.emit(
                "node_cancelled", n, {"category": "node", "duration_s": time.time() - start}, start
            )
            raise
        except Exception as exc:  # noqa: BLE001 - any failure fails the program, naming the node
            cause = exc.cause if isinstance(exc, NodeFailedError) else exc
            self._steps.emit(
                "node_error",
                n,
                {
                    "category": "node",
                    "duration_s": time.time() - start,
                    "error_type": type(cause).__name__,
                    "error": str(cause),
                },
                start,
            )
            if isinstance(node, ToolCall) and node.on_error == "value" and not self._closing:
                attempts = exc.attempts if isinstance(exc, NodeFailedError) else 1
                failure = ToolFailure(
                    tool=node.tool, error_type=type(cause).__name__, message=str(cause), attempts=attempts
                )
                self._complete(n, failure)
                return
            self._tasks.pop(n, None)
            error = exc if isinstance(exc, NodeFailedError) else NodeFailedError(self.id, n, exc)
            self._shutdown(error, "failed")
            return
        if self._steps.trace is not None:
            self._steps.emit(
                "node_end",
                n,
                {"category": "node", "duration_s": time.time() - start, "output": _preview(value)},
                start,
            )
        self._complete(n, value)

    async def _execute(self, n: str, node: LLMCall | ToolCall) -> Any:
        templates = self.program.templates[n]
        lookup = self._lookup(n)
        if isinstance(node, ToolCall):
            return await self._steps.tool(node, templates["args"].render(lookup))
        on_delta = self._on_delta.get(n)
        if node.prompt is not None:
            return await self._steps.llm_call(node, None, templates["prompt"].render(lookup), on_delta)
        assert node.messages is not None
        messages = tuple(  # a content that is one reference to a non-string value is its text form
            m.to_openai(as_text(templates[f"messages[{i}]"].render(lookup)))
            for i, m in enumerate(node.messages)
        )
        return await self._steps.llm_call(node, messages, None, on_delta)

    def _lookup(self, n: str | None) -> Callable[[Ref], Any]:
        def lookup(ref: Ref) -> Any:
            base = self.inputs[ref.name] if ref.source == "inputs" else self.outputs[ref.name]
            if not ref.path:
                return base
            try:
                return walk(base, ref.path)
            except RefResolutionError as exc:
                raise ReferenceResolutionError(n, ref.text, str(exc)) from None

        return lookup

    def _complete(self, n: str, value: Any) -> None:
        self.outputs[n] = value
        self._tasks.pop(n, None)
        self._remaining -= 1
        fut = self._node_futures.get(n)
        if fut is not None and not fut.done():
            fut.set_result(value)
        if self._closing:
            return
        waiting = self._waiting
        for s in self._succ[n]:
            waiting[s] -= 1
            if waiting[s] == 0:
                self._launch(s)
        if self._remaining == 0 and not self._held:
            self._finish_ok()

    # -- the end --------------------------------------------------------------------------------------------
    def _finish_ok(self) -> None:
        lookup = self._lookup(None)
        try:
            outputs = {k: t.render(lookup) for k, t in self.program.output_templates.items()}
        except ReferenceResolutionError as exc:
            self._shutdown(exc, "failed")
            return
        result = ProgramResult(self.id, outputs, dict(self.outputs), time.perf_counter() - self._start)
        self._shutdown(None, "ok", result)

    def _shutdown(
        self, error: BaseException | None, status: str, result: ProgramResult | None = None
    ) -> None:
        if self._closing:
            return
        self._closing = True
        self.status = status
        self.error = error
        running = list(self._tasks.values())
        for task in running:
            task.cancel()
        self._tasks.clear()
        for n, fut in self._node_futures.items():
            if not fut.done():
                fut.set_exception(self._missing_error(n))
        asyncio.get_running_loop().create_task(self._close(running, error, status, result))

    async def _close(
        self,
        running: list[asyncio.Task[None]],
        error: BaseException | None,
        status: str,
        result: ProgramResult | None,
    ) -> None:
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        llm = self._executor.llm
        if llm is not None and self._uses_llm:
            try:
                await llm.end_program(self.id)
            except Exception:  # noqa: BLE001 - releasing must not mask the program's own outcome
                log.exception("releasing program %s failed", self.id)
        attrs: dict[str, Any] = {"status": status, "duration_s": time.perf_counter() - self._start}
        if error is not None:
            attrs["error"] = str(error)
        self._steps.emit("program_end", None, attrs, self._started_at)
        self._executor.forget(self)
        if self._future.done():
            return
        if error is not None:
            self._future.set_exception(error)
        else:
            assert result is not None
            self._future.set_result(result)


def _preview(value: Any) -> str:
    text = pydantic_core.to_json(value, fallback=str).decode()
    return text if len(text) <= OUTPUT_PREVIEW_CHARS else text[: OUTPUT_PREVIEW_CHARS - 3] + "..."
