"""The agent context: which run (or compile trace) ``llm()`` and tool calls add nodes to.

``current`` is a ``ContextVar`` bound by ``Agent.run`` / ``Agent.compile`` while the agent function runs;
``tether.tools.context.call_hook`` is bound with it so calling a ``Tool`` records a ``ToolCall`` node. Nodes are
added to the held ``ProgramRun`` at once (they start as soon as their inputs are done); arguments that hold
references (``NodeHandle`` / ``Symbolic``, also nested in lists and dicts, or their text in strings) become
data edges.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import pydantic
import pydantic_core
from pydantic import TypeAdapter

from tether.agents.decorator.errors import (
    AgentArgumentError,
    AgentContextError,
    ForeignHandleError,
    HandleUsageError,
    ValueDependentError,
)
from tether.agents.decorator.frames import agent_location
from tether.agents.decorator.handles import NodeHandle, Reference, Symbolic
from tether.agents.decorator.options import retry_option, tool_options
from tether.dag.compiler import CompiledProgram, compile_program
from tether.dag.errors import ToolArgumentsError
from tether.dag.ir import InputSpec, LLMCall, Message, Program, RetryPolicy, ToolCall
from tether.dag.refs import Ref, walk
from tether.runtime.executor import ProgramRun
from tether.tools.context import call_hook
from tether.tools.errors import ToolArgumentError
from tether.tools.registry import ToolRegistry
from tether.tools.tool import Tool

current: ContextVar[AgentContext | None] = ContextVar("tether_agent_context", default=None)

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class AgentContext:
    """One agent run (``run`` set) or one compile trace (``run is None``: nodes are recorded, nothing runs).
    ``registry`` holds the tools calls go to; tools the agent calls that it lacks are registered in it."""

    def __init__(self, name: str, *, run: ProgramRun | None, registry: ToolRegistry) -> None:
        self.name = name
        self.run = run
        self.registry = registry
        self.nodes: list[LLMCall | ToolCall] = []  # in the order they were made (both modes)
        self.output_types: dict[str, Any] = {}  # node id -> the Python type its value is converted to
        self._counter = 0

    @property
    def compiling(self) -> bool:
        return self.run is None

    # -- binding ---------------------------------------------------------------------------------------------
    def bind(self) -> tuple[contextvars.Token[Any], contextvars.Token[Any]]:
        return current.set(self), call_hook.set(_tool_hook)

    @staticmethod
    def unbind(tokens: tuple[contextvars.Token[Any], contextvars.Token[Any]]) -> None:
        call_hook.reset(tokens[1])
        current.reset(tokens[0])

    # -- nodes -----------------------------------------------------------------------------------------------
    def new_id(self, base: str) -> str:
        self._counter += 1
        base = _UNSAFE.sub("_", base) or "node"
        if not (base[0].isalpha() or base[0] == "_"):
            base = f"n_{base}"
        return f"{base}_{self._counter}"

    def add(self, node: LLMCall | ToolCall, output_type: Any = None) -> NodeHandle:
        if self.run is None:
            Program(self.name, nodes=[node])  # reference syntax now; the rest when the trace compiles
        else:  # nodes run in a clean context: their tasks must not see this agent or its tool hook
            contextvars.Context().run(self.run.add_node, node)
        self.nodes.append(node)
        if output_type is not None:
            self.output_types[node.id] = output_type
        return NodeHandle(self, Ref("node", node.id))

    def template(self, value: Any) -> Any:
        """``value`` with every reference replaced by its template text (alone: the typed value)."""
        if isinstance(value, Reference):
            self.check_own(value)
            return value.text
        if isinstance(value, (list, tuple)):
            return [self.template(v) for v in value]
        if isinstance(value, Mapping):
            return {str(k): self.template(v) for k, v in value.items()}
        return value

    def check_own(self, ref: Reference) -> None:
        if ref._owner is not self:
            file, line = agent_location()
            raise ForeignHandleError(
                f"{ref.text} belongs to agent run {ref._owner.label!r}, not to {self.label!r}; "
                "pass its value (await it in its own run) instead",
                node=ref.node_id,
                path=file,
                line=line,
            )

    @property
    def label(self) -> str:
        return self.run.id if self.run is not None else f"{self.name} (compiling)"

    # -- values ----------------------------------------------------------------------------------------------
    async def resolve(self, handle: NodeHandle) -> Any:
        """The value of ``handle`` (a ``Symbolic`` while compiling)."""
        active = current.get()
        if active is not None and active is not self:
            active.check_own(handle)
        if self.run is None:
            return Symbolic(self, handle.ref)
        ref = handle.ref
        value = await self.run.node_future(ref.name)
        if ref.path:
            return walk(value, ref.path)
        py_type = self.output_types.get(ref.name)
        if py_type is not None:
            value = TypeAdapter(py_type).validate_python(pydantic_core.to_jsonable_python(value))
        return value

    async def realize(self, value: Any) -> Any:
        """``value`` with every handle replaced by its value (run mode: what an agent returns)."""
        if isinstance(value, NodeHandle):
            return await value
        if isinstance(value, list):
            return [await self.realize(v) for v in value]
        if isinstance(value, tuple):
            return tuple([await self.realize(v) for v in value])
        if isinstance(value, dict):
            return {k: await self.realize(v) for k, v in value.items()}
        return value

    def misuse(self, ref: Reference, op: str) -> Exception:
        file, line = agent_location()
        if self.run is None:
            return ValueDependentError(
                f"agent {self.name!r}: {op} on {ref.text}, a value known only when the program runs; "
                "a compiled program cannot branch on it (run the agent instead of compiling it)",
                node=ref.node_id,
                path=file,
                line=line,
            )
        return HandleUsageError(
            f"agent {self.name!r}: {op} on the handle {ref.text}; a handle is a node still running, "
            "await it for its value",
            node=ref.node_id,
            path=file,
            line=line,
        )

    # -- tools -----------------------------------------------------------------------------------------------
    def tool(self, name_or_tool: str | Tool) -> Tool:
        """The registry's tool (registering ``Tool`` objects it lacks)."""
        if isinstance(name_or_tool, Tool):
            t = name_or_tool
            if t.name not in self.registry:
                self.registry.register(t)
                return t
            known = self.registry.get(t.name)
            if known is not t and _source(known) != _source(t):
                file, line = agent_location()
                raise AgentArgumentError(
                    f"tool {t.name!r}: the runtime's registry holds another tool of that name "
                    f"({_source(known)[0]}), not the one called ({_source(t)[0]})",
                    path=file,
                    line=line,
                )
            return known
        if name_or_tool not in self.registry:
            from tether.dag.errors import ToolNotFoundError

            file, line = agent_location()
            raise ToolNotFoundError("<agent>", name_or_tool, self.registry.names(), path=file, line=line)
        return self.registry.get(name_or_tool)

    def tool_call(
        self,
        t: Tool,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        options: Mapping[str, Any] | None = None,
        *,
        depends: Sequence[str] = (),
    ) -> NodeHandle:
        """A ``ToolCall`` node: ``args`` name the tool's parameters in order; ``options`` are
        ``tool.options(...)``'s (``timeout``, ``retry``: ``options.tool_options``); ``depends``: nodes it comes
        after without reading them (the reply whose tool calls it runs)."""
        t = self.tool(t)
        names = list(t.args_model.model_fields)
        file, line = agent_location()
        node_id = self.new_id(t.name)
        fields = tool_options(t.name, node_id, options or {})
        if len(args) > len(names):
            raise AgentArgumentError(
                f"tool {t.name!r}: {len(args)} positional arguments, it takes {len(names)} "
                f"({', '.join(names)})",
                node=node_id,
                path=file,
                line=line,
            )
        call: dict[str, Any] = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key in call:
                raise AgentArgumentError(
                    f"tool {t.name!r}: argument {key!r} given twice", node=node_id, path=file, line=line
                )
            call[key] = value
        rendered = self.template(call)
        unresolved = {k for k, v in call.items() if _holds_reference(v)}
        try:
            t.check_partial_args(rendered, unresolved)
        except ToolArgumentError as exc:
            raise ToolArgumentsError(node_id, t.name, exc.field, exc.reason, path=file, line=line) from None
        return self.add(ToolCall(id=node_id, tool=t.name, args=rendered, depends=tuple(depends), **fields))

    # -- LLM calls -------------------------------------------------------------------------------------------
    def llm(
        self,
        prompt: str | Reference | Sequence[Any],
        *,
        system: str | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        tools: Sequence[Tool | str] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        output: Any = None,
        grammar: str | None = None,
        retry: RetryPolicy | int | Mapping[str, Any] | None = None,
        timeout: float | None = None,
        name: str = "llm",
    ) -> NodeHandle:
        messages = self.messages(prompt, system)
        schema, py_type = _output_schema(output)
        tool_names = tuple(self.tool(t).name for t in (tools or ()))
        node_id = self.new_id(name)
        policy = retry_option("llm()", node_id, retry)
        extra: dict[str, Any] = {} if policy is None else {"retry": policy}
        try:
            node = LLMCall(
                id=node_id,
                messages=messages,
                max_tokens=max_tokens,
                temperature=temperature,
                tools=tool_names,
                tool_choice=tool_choice,
                output=schema,
                grammar=grammar,
                timeout=timeout,
                **extra,
            )
        except pydantic.ValidationError as exc:
            file, line = agent_location()
            err = exc.errors(include_url=False)[0]
            raise AgentArgumentError(f"llm(): {err['msg']}", node=node_id, path=file, line=line) from None
        return self.add(node, py_type)

    def messages(self, prompt: Any, system: str | None = None) -> tuple[Message, ...]:
        """Chat messages from a prompt (a string or reference: one user message) or a list of ``Message``s
        / OpenAI-shaped dicts, with references as template text; ``system`` comes first."""
        out: list[Message] = [] if system is None else [Message(role="system", content=self.text(system))]
        if isinstance(prompt, (str, Reference)):
            out.append(Message(role="user", content=self.text(prompt)))
            return tuple(out)
        for m in prompt:
            if isinstance(m, Message):
                out.append(m)
            elif isinstance(m, Mapping):
                content = m.get("content")
                out.append(Message(**{**m, "content": "" if content is None else self.text(content)}))
            else:
                file, line = agent_location()
                raise AgentArgumentError(
                    f"llm(): a message must be a Message or a dict, got {type(m).__name__}",
                    path=file,
                    line=line,
                )
        return tuple(out)

    def text(self, value: Any) -> str:
        if isinstance(value, Reference):
            self.check_own(value)
            return value.text
        if not isinstance(value, str):
            file, line = agent_location()
            raise AgentArgumentError(
                f"message content must be text, got {type(value).__name__}", path=file, line=line
            )
        return value

    # -- compile ---------------------------------------------------------------------------------------------
    def compiled(self, inputs: Mapping[str, InputSpec], result: Any) -> CompiledProgram:
        """The recorded nodes as a static program; ``result`` (what the agent returned) is output ``result``."""
        outputs = {"result": self.template(result)}
        program = Program(self.name, inputs=inputs, nodes=self.nodes, outputs=outputs)
        return compile_program(program, self.registry)


def _tool_hook(t: Tool, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]) -> Any:
    ctx = current.get()
    if ctx is None:  # bound without an agent (should not happen): a plain call
        return t.fn(*args, **kwargs)
    return ctx.tool_call(t, args, kwargs, options)


def _holds_reference(value: Any) -> bool:
    if isinstance(value, Reference):
        return True
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, (list, tuple)):
        return any(_holds_reference(v) for v in value)
    if isinstance(value, Mapping):
        return any(_holds_reference(v) for v in value.values())
    return False


def _output_schema(output: Any) -> tuple[dict[str, Any] | None, Any]:
    """``(JSON schema, Python type to convert the value to)`` of an ``output=`` argument."""
    if output is None:
        return None, None
    if isinstance(output, Mapping):
        return dict(output), None
    return TypeAdapter(output).json_schema(), output


def _source(t: Tool) -> tuple[str, int]:
    code = getattr(t.fn, "__code__", None)
    return (code.co_filename, code.co_firstlineno) if code is not None else (repr(t.fn), 0)


def require_context(what: str) -> AgentContext:
    ctx = current.get()
    if ctx is None:
        file, line = agent_location()
        raise AgentContextError(
            f"{what} called outside an agent: call it inside an @agent function run with "
            "`await my_agent.run(...)` (or compiled with `my_agent.compile(...)`)",
            path=file,
            line=line,
        )
    return ctx


def llm(prompt: Any, **kwargs: Any) -> NodeHandle:
    """An LLM call of the current agent: a handle, already running. See ``AgentContext.llm``."""
    return require_context("llm()").llm(prompt, **kwargs)
