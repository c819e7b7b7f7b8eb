"""``@agent``: an async function whose ``llm()`` and tool calls become nodes of one growing program.

@agent
async def populations(cities: list[str]) -> float:
    counts = [lookup(table="cities", key=c, field="population") for c in cities]  # all start at once
    total = calculator(expression=" + ".join(f"{c}" for c in counts))             # data edges
    return await total

value = await populations.run(["Paris", "Rome"], model="smollm2")
populations.last_run.trace_id, populations.last_run.program.graph.edges
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import re
import typing
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.agents.decorator.context import AgentContext, current
from tether.agents.decorator.errors import AgentContextError, AgentDefinitionError
from tether.agents.decorator.frames import AGENT_CODES
from tether.agents.decorator.handles import Symbolic
from tether.agents.runtime import AgentRuntime
from tether.dag.compiler import CompiledProgram
from tether.dag.ir import InputSpec, Program
from tether.dag.refs import Ref
from tether.runtime.executor import ProgramResult
from tether.tools.registry import ToolRegistry
from tether.tools.tool import Tool

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class AgentRun:
    """One finished agent run: the function's return ``value`` (handles in it awaited), the program id
    (``trace_id``: every trace event of the run carries it), the ``program`` as it grew (``program.graph``
    has the data edges), the executor's ``result`` (every node's value) and the trace file when known."""

    value: Any
    trace_id: str
    program: Program
    result: ProgramResult
    trace_path: Path | None = None

    @property
    def edges(self) -> list[tuple[str, str, str]]:
        """``(from, to, kind)`` for every edge of the program."""
        return [(a, b, d["kind"]) for a, b, d in self.program.graph.edges(data=True)]


class Agent:
    """An agent function. ``await a.run(*args, runtime=rt | model=..., **kwargs)`` runs it as one program
    and returns its value (``a.last_run`` / ``await a.execute(...)`` give the ``AgentRun``);
    ``a.compile(**inputs)`` records it as a static ``CompiledProgram``; ``await a(...)`` inside another
    agent runs it inline (its nodes join the caller's program)."""

    def __init__(
        self,
        fn: Callable[..., Coroutine[Any, Any, Any]],
        *,
        name: str | None = None,
        model: str | None = "smollm2",
        tools: Iterable[Tool] = (),
    ) -> None:
        if not inspect.iscoroutinefunction(fn):
            raise AgentDefinitionError(f"@agent needs an `async def` function, got {fn!r}")
        self.fn = fn
        self.name = name or fn.__name__
        if not _NAME.match(self.name):
            raise AgentDefinitionError(f"agent name {self.name!r} must match [A-Za-z_][A-Za-z0-9_-]*")
        self.model = model
        self.tools = tuple(tools)
        self.last_run: AgentRun | None = None
        AGENT_CODES.add(fn.__code__)
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    # -- running ---------------------------------------------------------------------------------------------
    async def run(
        self, *args: Any, runtime: AgentRuntime | None = None, model: str | None = None, **kwargs: Any
    ) -> Any:
        """Run the agent; its return value. See ``execute``."""
        return (await self.execute(*args, runtime=runtime, model=model, **kwargs)).value

    async def execute(
        self,
        *args: Any,
        runtime: AgentRuntime | None = None,
        model: str | None = None,
        program_id: str | None = None,
        **kwargs: Any,
    ) -> AgentRun:
        """Run the agent on ``runtime`` (else a new ``AgentRuntime`` on ``model`` or the agent's model,
        closed afterwards): a held program run is bound while the function runs, sealed when it returns
        and awaited. If the function raises, the run is cancelled and the error re-raised; a failing node
        raises ``NodeFailedError`` where its handle is awaited (or here, if none was)."""
        if runtime is None:
            async with await AgentRuntime.create(self.tools, model=model or self.model) as rt:
                return await self._execute(rt, args, kwargs, program_id)
        return await self._execute(runtime, args, kwargs, program_id)

    async def _execute(
        self, rt: AgentRuntime, args: tuple[Any, ...], kwargs: dict[str, Any], program_id: str | None
    ) -> AgentRun:
        run = rt.start_program(self.name, program_id=program_id)
        ctx = AgentContext(self.name, run=run, registry=rt.registry)
        for t in self.tools:
            ctx.tool(t)
        tokens = ctx.bind()
        try:
            value = await ctx.realize(await self.fn(*args, **kwargs))
        except BaseException:
            run.cancel(f"agent {self.name!r} raised")
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await run.wait()  # the run has ended (KV pins released) when the error propagates
            raise
        finally:
            ctx.unbind(tokens)
        run.seal()
        result = await run.wait()
        self.last_run = AgentRun(value, run.id, run.program, result, rt.trace_path)
        return self.last_run

    def __call__(self, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        if current.get() is None:
            raise AgentContextError(
                f"agent {self.name!r} called directly outside an agent: use `await {self.name}.run(...)`"
            )
        return self.fn(*args, **kwargs)

    # -- compiling -------------------------------------------------------------------------------------------
    def compile(self, *args: Any, registry: ToolRegistry | None = None, **inputs: Any) -> CompiledProgram:
        """Record the agent as a static program without running anything. Every parameter becomes a program
        input (``${inputs.name}``); values given here become the inputs' defaults. ``await handle`` gives a
        ``Symbolic`` value; using it to decide anything raises ``ValueDependentError`` naming the line.
        The return value is output ``result``. ``registry``: the tools (the ones called are added)."""
        specs = self._input_specs(args, inputs)
        ctx = AgentContext(self.name, run=None, registry=registry if registry is not None else ToolRegistry())
        for t in self.tools:
            ctx.tool(t)
        symbols = {name: Symbolic(ctx, Ref("inputs", name)) for name in specs}
        result = _drive(ctx, self.fn(**symbols), self.name)
        return ctx.compiled(specs, result)

    def _input_specs(self, args: tuple[Any, ...], given: Mapping[str, Any]) -> dict[str, InputSpec]:
        sig = inspect.signature(self.fn)
        bound = sig.bind_partial(*args, **given).arguments
        hints = typing.get_type_hints(self.fn)
        specs: dict[str, InputSpec] = {}
        for p in sig.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise AgentDefinitionError(
                    f"agent {self.name!r}: compile needs named parameters, not *{p.name}"
                )
            kind = _input_type(hints.get(p.name))
            if p.name in bound:
                specs[p.name] = InputSpec(type=kind, default=bound[p.name])
            elif p.default is not p.empty:
                specs[p.name] = InputSpec(type=kind, default=p.default)
            else:
                specs[p.name] = InputSpec(type=kind)
        return specs

    def __repr__(self) -> str:
        return f"<agent {self.name}>"


def _drive(ctx: AgentContext, coro: Coroutine[Any, Any, Any], name: str) -> Any:
    """Run the agent coroutine to its end with ``ctx`` bound; awaiting handles never suspends here."""
    import contextvars

    def step() -> Any:
        tokens = ctx.bind()
        try:
            try:
                yielded = coro.send(None)
            except StopIteration as stop:
                return stop.value
            coro.close()
            raise AgentDefinitionError(
                f"agent {name!r} awaited {yielded!r} while compiling; only handles can be awaited then"
            )
        finally:
            ctx.unbind(tokens)

    return contextvars.copy_context().run(step)


_INPUT_TYPES: dict[Any, str] = {
    str: "string", int: "integer", float: "number", bool: "boolean",
    list: "array", tuple: "array", dict: "object",
}  # fmt: skip


def _input_type(annotation: Any) -> Any:
    if annotation is None:
        return "string"
    origin = typing.get_origin(annotation) or annotation
    return _INPUT_TYPES.get(origin, "object" if isinstance(origin, type) else "string")


def agent(
    fn: Callable[..., Coroutine[Any, Any, Any]] | None = None,
    *,
    name: str | None = None,
    model: str | None = "smollm2",
    tools: Iterable[Tool] = (),
) -> Any:
    """``@agent`` or ``@agent(name=..., model=..., tools=[...])`` on an ``async def`` function."""

    def wrap(f: Callable[..., Coroutine[Any, Any, Any]]) -> Agent:
        return Agent(f, name=name, model=model, tools=tools)

    return wrap(fn) if fn is not None else wrap
