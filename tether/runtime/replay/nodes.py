"""The DAG a replayed program records (docs/tracing.md, "Replay traces"): a node per LLM call and one per tool
pause, so the trace UI draws the program as it ran, node by node, with real states.

    turn-0 ─► tool-0 ─► turn-1 ─► tool-1 ─► ... ─► turn-N  (─► tool-N when the last turn called a tool)

A forked turn ``k`` of a compiled program has one call per branch (``turn-k``, ``turn-k.1``, ...), each followed
by its own tool (``tool-k``, ``tool-k.1``); turn ``k+1`` depends on every branch's last node (the driver
starts it when the slowest tool has returned). The turn's own call always has a tool node (its tool, or the pause
before the next turn's new input, ``tool: null``); a forked call has one only when it names a tool; the last
turn has tool nodes only when its own call named a tool (the client ends the program after that tool).
"""

from __future__ import annotations

from typing import Any

from tether.runtime.replay.workload import TraceProgram


def call_id(turn: int, call: int) -> str:
    """``3`` for turn 3's own call, ``3.1`` for the first call it forked."""
    return f"{turn}.{call}" if call else str(turn)


def turn_node(turn: int, call: int) -> str:
    """The node id of an LLM call (its ``llm_turn`` events carry it)."""
    return f"turn-{call_id(turn, call)}"


def tool_node(turn: int, call: int) -> str:
    """The node id of the tool pause after an LLM call (its ``tool_call`` event carries it)."""
    return f"tool-{call_id(turn, call)}"


def has_tool(program: TraceProgram, turn: int, call: int) -> bool:
    """Whether the replay pauses for a tool after call ``call`` of turn ``turn`` (and records a ``tool_call``)."""
    if turn == program.num_turns - 1 and program.turns[-1].tool is None:
        return False
    return call == 0 or program.turns[turn].calls[call].tool is not None


def exits(program: TraceProgram, turn: int) -> list[str]:
    """The last node of each call of ``turn``: what the next turn's calls depend on."""
    return [
        tool_node(turn, j) if has_tool(program, turn, j) else turn_node(turn, j)
        for j in range(len(program.turns[turn].calls))
    ]


def turn_deps(program: TraceProgram, turn: int) -> list[str]:
    """The deps of every call of ``turn``: none for the first turn, else the previous turn's exits."""
    return exits(program, turn - 1) if turn else []


def program_nodes(program: TraceProgram) -> list[dict[str, Any]]:
    """Every node of ``program`` as ``program_start`` lists them (``{"id", "kind", "tool", "deps"}``), in the
    order they run."""
    nodes: list[dict[str, Any]] = []
    for k, turn in enumerate(program.turns):
        deps = turn_deps(program, k)
        for j in range(len(turn.calls)):
            nodes.append({"id": turn_node(k, j), "kind": "llm", "tool": None, "deps": deps})
        for j, call in enumerate(turn.calls):
            if has_tool(program, k, j):
                nodes.append(
                    {"id": tool_node(k, j), "kind": "tool", "tool": call.tool, "deps": [turn_node(k, j)]}
                )
    return nodes


def program_edges(nodes: list[dict[str, Any]]) -> list[list[str]]:
    """``[[dep, node], ...]`` of ``program_nodes``' nodes."""
    return [[d, n["id"]] for n in nodes for d in n["deps"]]
