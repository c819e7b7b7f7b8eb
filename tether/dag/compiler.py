"""The compiler: validation (``tether.dag.validate``), then the annotations the executor and the scheduler use:
topological levels, predicted durations and the critical path, and for every LLM call its hints (the tools
that follow it, the turns that remain, the group of calls sharing its prompt prefix).

    compile_program(program, registry, stats=...) -> CompiledProgram
    extend(compiled, node)                        -> a node added while the program runs
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace

import networkx as nx
from pydantic import TypeAdapter

from tether.dag.errors import DagError, UnknownReferenceError
from tether.dag.ir import LLMCall, Program, ToolCall
from tether.dag.refs import Ref, find_refs, static_prefix
from tether.dag.validate import check_node, validate
from tether.hints import LLMHints
from tether.tools.durations import ToolDurationStats
from tether.tools.registry import ToolRegistry
from tether.tools.store import deployment_stats

LLM_SECONDS_PER_TOKEN = 0.02  # a rough decode rate for predictions: 50 tokens/s
MIN_SHARED_PREFIX_CHARS = 32


@dataclass(frozen=True)
class CriticalPath:
    """The chain of nodes with the longest predicted total duration, and that duration."""

    nodes: tuple[str, ...]
    seconds: float


@dataclass
class CompiledProgram:
    """A validated program and its annotations. ``order`` is topological (a node after every node it
    depends on); ``levels[n]`` is the longest number of edges from a source to ``n``."""

    program: Program
    order: list[str]
    levels: dict[str, int]
    predicted_s: dict[str, float]
    critical_path: CriticalPath
    hints: dict[str, LLMHints]
    prefix_groups: dict[str, tuple[str, ...]]
    output_types: dict[str, TypeAdapter]
    registry: ToolRegistry | None = None
    stats: ToolDurationStats = field(default_factory=deployment_stats)
    llm_seconds_per_token: float = LLM_SECONDS_PER_TOKEN

    @property
    def num_levels(self) -> int:
        return 1 + max(self.levels.values(), default=-1)


def compile_program(
    program: Program,
    registry: ToolRegistry | None = None,
    *,
    stats: ToolDurationStats | None = None,
    llm_seconds_per_token: float = LLM_SECONDS_PER_TOKEN,
    min_shared_prefix_chars: int = MIN_SHARED_PREFIX_CHARS,
) -> CompiledProgram:
    """Validate ``program`` and annotate it. ``registry=None`` skips the tool checks (tools served only by
    remote workers); ``stats`` predicts tool durations (default: the deployment's, ``tether.tools.store``; the
    prior's 1 s mean for a tool never observed)."""
    output_types = validate(program, registry)
    stats = stats if stats is not None else deployment_stats()
    order = list(nx.topological_sort(program.graph))
    levels: dict[str, int] = {}
    for n in order:
        levels[n] = 1 + max((levels[p] for p in program.graph.predecessors(n)), default=-1)
    predicted = {n: _predict(program.nodes[n], stats, llm_seconds_per_token) for n in order}
    groups = _prefix_groups(program, min_shared_prefix_chars)
    return CompiledProgram(
        program=program,
        order=order,
        levels=levels,
        predicted_s=predicted,
        critical_path=_critical_path(program.graph, order, predicted),
        hints=_llm_hints(program, order, predicted, groups),
        prefix_groups=groups,
        output_types=output_types,
        registry=registry,
        stats=stats,
        llm_seconds_per_token=llm_seconds_per_token,
    )


def _predict(node: LLMCall | ToolCall, stats: ToolDurationStats, per_token: float) -> float:
    if isinstance(node, ToolCall):
        return stats.mean(node.tool)
    return node.max_tokens * per_token


def _critical_path(graph: nx.DiGraph, order: list[str], predicted: dict[str, float]) -> CriticalPath:
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for n in order:
        best = max(graph.predecessors(n), key=lambda p: finish[p], default=None)
        finish[n] = predicted[n] + (finish[best] if best is not None else 0.0)
        via[n] = best
    if not finish:
        return CriticalPath((), 0.0)
    end: str | None = max(order, key=lambda n: finish[n])
    total = finish[end]
    chain: list[str] = []
    while end is not None:
        chain.append(end)
        end = via[end]
    return CriticalPath(tuple(reversed(chain)), total)


def _llm_hints(
    program: Program, order: list[str], predicted: dict[str, float], groups: dict[str, tuple[str, ...]]
) -> dict[str, LLMHints]:
    graph, nodes = program.graph, program.nodes
    is_llm = {n: isinstance(nodes[n], LLMCall) for n in order}
    llms = [n for n in order if is_llm[n]]
    before: dict[str, int] = {}
    for n in order:
        before[n] = max((before[p] + is_llm[p] for p in graph.predecessors(n)), default=0)
    after: dict[str, int] = {}
    for n in reversed(order):
        after[n] = max((after[s] + is_llm[s] for s in graph.successors(n)), default=0)
    group_of = {n: g for g, members in groups.items() for n in members}
    hints = {}
    for n in llms:
        follow = [s for s in graph.successors(n) if isinstance(nodes[s], ToolCall)]
        follow.sort(key=lambda s: (-predicted[s], s))
        tools = tuple(dict.fromkeys(nodes[s].tool for s in follow))  # type: ignore[union-attr]
        last = not program.may_grow and sum(is_llm[a] for a in nx.ancestors(graph, n)) == len(llms) - 1
        hints[n] = LLMHints(
            turn=before[n],
            remaining_turns=None if program.may_grow else after[n],
            last_turn=last,
            next_tools=tools,
            prefix_group=group_of.get(n),
        )
    return hints


def prompt_prefix(node: LLMCall) -> str:
    """The text every rendering of the call's prompt starts with (messages in ChatML-like form)."""
    if node.prompt is not None:
        return static_prefix(node.prompt)
    out = []
    for m in node.messages or ():
        head = static_prefix(m.content)
        out.append(f"<{m.role}>\n{head}")
        if head != m.content.replace("$${", "${"):
            break
    return "".join(out)


def _prefix_groups(program: Program, min_chars: int) -> dict[str, tuple[str, ...]]:
    """Groups of LLM calls whose static prompt prefixes share at least ``min_chars`` characters: the calls
    sorted by prefix, a group extended while the next shares enough with the group's first."""
    prefixes = sorted(
        (prompt_prefix(node), n) for n, node in program.nodes.items() if isinstance(node, LLMCall)
    )
    groups: dict[str, tuple[str, ...]] = {}
    current: list[tuple[str, str]] = []

    def close() -> None:
        if len(current) > 1:
            groups[f"prefix-{len(groups)}"] = tuple(sorted(n for _, n in current))

    for prefix, n in prefixes:
        if current and _common(current[0][0], prefix) >= min_chars:
            current.append((prefix, n))
            continue
        close()
        current = [(prefix, n)]
    close()
    return groups


def _common(a: str, b: str) -> int:
    k = 0
    for x, y in zip(a, b):
        if x != y:
            break
        k += 1
    return k


def extend(
    compiled: CompiledProgram,
    node: LLMCall | ToolCall,
    hints: LLMHints | None = None,
    *,
    streamed_from: str | None = None,
) -> None:
    """Add ``node`` to a running program: it may reference only nodes already there (so no cycle can
    form). Validated like the rest (a node that does not validate is not added); its level and prediction
    are set (the critical path is not recomputed), and an LLM call gets ``hints``, by default only its turn
    (``remaining_turns`` stays ``None``, ``last_turn`` False: what follows it is not known yet). A tool call
    added after an LLM call it depends on, or ``streamed_from`` (the LLM call whose streaming reply
    dispatched it: a ``"stream"`` edge), is added to that call's ``next_tools``: read at dispatch by a call
    not yet dispatched, and at its turn's end by the engine (``Steps.turn_outcome``)."""
    program = compiled.program
    named = (*node.depends, *(r.name for r in _node_refs(node) if r.source == "node"))
    for ref in (*named, *((streamed_from,) if streamed_from is not None else ())):
        if ref not in program.nodes:
            raise UnknownReferenceError(node.id, ref, "a node added at run time may only name existing nodes")
    if streamed_from is not None and not isinstance(program.nodes[streamed_from], LLMCall):
        raise UnknownReferenceError(node.id, streamed_from, "a node is streamed only from an LLM call")
    program.add_node(node, streamed_from=streamed_from)
    try:
        adapter = check_node(program, node.id, compiled.registry)
    except DagError:
        program.remove_node(node.id)
        raise
    if adapter is not None:
        compiled.output_types[node.id] = adapter
    preds = list(program.graph.predecessors(node.id))
    compiled.order.append(node.id)
    compiled.levels[node.id] = 1 + max((compiled.levels[p] for p in preds), default=-1)
    compiled.predicted_s[node.id] = _predict(node, compiled.stats, compiled.llm_seconds_per_token)
    if isinstance(node, LLMCall):
        turns = defaultdict(int, {n: h.turn + 1 for n, h in compiled.hints.items()})
        turn = max((turns[a] for a in nx.ancestors(program.graph, node.id)), default=0)
        compiled.hints[node.id] = hints or LLMHints(turn=turn)
    else:
        _tool_follows(compiled, node, preds)


def _tool_follows(compiled: CompiledProgram, node: ToolCall, preds: list[str]) -> None:
    """A tool added after an LLM call it depends on becomes that call's ``next_tools`` (longest predicted
    first, as the compiler orders them). The executor reads hints when it dispatches a call, so this reaches
    the backend only for a call not yet dispatched (one still waiting for its own inputs)."""
    program = compiled.program
    for p in preds:
        hints = compiled.hints.get(p)
        if hints is None or not isinstance(program.nodes.get(p), LLMCall) or node.tool in hints.next_tools:
            continue
        follow = [s for s in program.graph.successors(p) if isinstance(program.nodes.get(s), ToolCall)]
        follow.sort(key=lambda s: (-compiled.predicted_s[s], s))
        tools = tuple(dict.fromkeys(program.nodes[s].tool for s in follow))  # type: ignore[union-attr]
        compiled.hints[p] = replace(hints, next_tools=tools)


def _node_refs(node: LLMCall | ToolCall) -> list[Ref]:
    if isinstance(node, ToolCall):
        return list(find_refs(node.args))
    if node.prompt is not None:
        return list(find_refs(node.prompt))
    return [r for m in node.messages or () for r in find_refs(m.content)]
