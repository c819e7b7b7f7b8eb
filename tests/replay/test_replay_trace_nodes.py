"""A replayed program records its DAG (``replay.nodes``): ``program_start`` lists a node per LLM call and per
tool pause with their deps, and every node starts and ends in the trace, after its deps have ended."""

from __future__ import annotations

from tests.replay.test_compiled import FORKED
from tests.replay.test_hints import sim_engine
from tether.runtime.replay.driver import Arrivals
from tether.runtime.replay.nodes import program_edges, program_nodes
from tether.runtime.replay.workload import TraceProgram, Turn
from tether.runtime.tracing.writer import MemoryTraceSink

# three turns, the last one calls a tool (the client ends the program after it)
OPEN = TraceProgram(
    "open", (Turn(30, 30, 4, "bash", 0.3), Turn(40, 6, 5, None, None), Turn(50, 5, 3, "edit", 0.2))
)


def recorded(programs: list[TraceProgram]) -> MemoryTraceSink:
    sink = MemoryTraceSink()
    driver, engine, _ = sim_engine(programs, Arrivals(times=(0.0,) * len(programs)), trace=sink)
    engine.trace_to(sink)
    driver.run(engine)
    return sink


def test_the_nodes_of_an_open_ended_program_are_a_chain_of_turns_and_tool_pauses():
    nodes = program_nodes(OPEN)
    assert [(n["id"], n["kind"], n["tool"], n["deps"]) for n in nodes] == [
        ("turn-0", "llm", None, []),
        ("tool-0", "tool", "bash", ["turn-0"]),
        ("turn-1", "llm", None, ["tool-0"]),
        ("tool-1", "tool", None, ["turn-1"]),  # no tool named: the pause before the next turn's new input
        ("turn-2", "llm", None, ["tool-1"]),
        ("tool-2", "tool", "edit", ["turn-2"]),
    ]


def test_a_forked_turn_has_a_node_per_call_and_the_next_turn_joins_them():
    nodes = {n["id"]: n for n in program_nodes(FORKED)}
    assert list(nodes) == ["turn-0", "tool-0", "turn-1", "turn-1.1", "tool-1", "tool-1.1", "turn-2"]
    assert nodes["turn-1"]["deps"] == nodes["turn-1.1"]["deps"] == ["tool-0"]
    assert nodes["tool-1.1"]["tool"] == "edit" and nodes["tool-1.1"]["deps"] == ["turn-1.1"]
    assert nodes["turn-2"]["deps"] == ["tool-1", "tool-1.1"]
    assert len(program_edges(list(nodes.values()))) == 7


def test_the_replay_trace_records_the_dag_and_every_nodes_start_and_end():
    sink = recorded([OPEN, FORKED])
    for program in (OPEN, FORKED):
        events = [e for e in sink.events if e.program_id == program.program_id]
        (start,) = [e for e in events if e.kind == "program_start"]
        assert start.attrs["nodes"] == program_nodes(program)
        assert start.attrs["edges"] == program_edges(program_nodes(program))
        ids = [n["id"] for n in program_nodes(program)]
        started = [e.node_id for e in events if e.kind == "node_start"]
        ended = {e.node_id: e for e in events if e.kind == "node_end"}
        assert sorted(started) == sorted(ids) and sorted(ended) == sorted(ids)
        first_start = {e.node_id: e.ts for e in events if e.kind == "node_start"}
        for n in program_nodes(program):
            for dep in n["deps"]:
                assert ended[dep].ts <= first_start[n["id"]] + 1e-9, (n["id"], dep)
            assert ended[n["id"]].start == first_start[n["id"]]
        tools = {e.node_id for e in events if e.kind == "tool_call"}
        assert tools == {i for i in ids if i.startswith("tool-")}
        turns = {e.node_id for e in events if e.kind == "llm_turn"}
        assert turns == {i for i in ids if i.startswith("turn-")}
