"""The hints rule: a replayed trace program's requests never carry its future."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.replay.test_replay import PROGRAMS, program
from tether.runtime.costs import H100_LLAMA31_8B
from tether.runtime.engine.builder import build_engine
from tether.runtime.engine.config import EngineConfig
from tether.runtime.engine.llm_engine import LLMEngine
from tether.runtime.engine.sequence import ProgramHints, TurnOutcome
from tether.runtime.replay.driver import Arrivals, ReplayDriver
from tether.runtime.replay.runner import ReplaySettings, run_replay
from tether.runtime.replay.workload import TraceProgram
from tether.runtime.sim.backend import SimBackend
from tether.runtime.sim.clock import VirtualClock

LONG = program(
    "long",
    [
        (0, 4, "bash", 0.3),
        (6, 3, "edit", 0.1),
        (5, 5, "bash", 0.2),
        (8, 2, "python", 0.4),
        (3, 3, None, None),
    ],
    first_prompt=50,
)


def truncated(p: TraceProgram, k: int, keep_tool: bool = False) -> TraceProgram:
    """The same program had it stopped after turn k: its last turn calls no tool, or (``keep_tool``) calls the
    tool it called in ``p`` and the program ends when that returns (as 107 of 117 Terminal-Bench programs do)."""
    turns = list(p.turns[: k + 1])
    last = turns[-1]
    if not keep_tool:
        turns[-1] = type(last)(last.prompt_tokens, last.new_input_tokens, last.output_tokens, None, None)
    return TraceProgram(p.program_id, tuple(turns))


def sim_engine(
    programs: list[TraceProgram], arrivals: Arrivals, policy: str = "tether", **driver_options
) -> tuple[ReplayDriver, LLMEngine, VirtualClock]:
    """A replay driver of ``programs`` and the simulated H100 engine of 64 KV blocks it drives, on a virtual
    clock (the engine told by the driver what each turn's output says, reading the durations it records)."""
    clock = VirtualClock()
    driver = ReplayDriver(programs, arrivals, clock, **driver_options)
    engine = build_engine(
        EngineConfig(num_kv_blocks=64, policy=policy),
        backend=SimBackend(H100_LLAMA31_8B, clock),
        clock=clock.now,
        turn_outcome=driver.outcome,
        tool_stats=driver.tool_stats,
    )
    return driver, engine, clock


def replay_recording(programs: list[TraceProgram], hints: str = "online", policy: str = "tether"):
    """Replays in simulation; returns every request's (hints, prompt length) and every turn end's outcome."""
    submitted, outcomes = [], []

    def recording_outcome(seq):
        out = driver.outcome(seq)
        outcomes.append((seq.request_id, out))
        return out

    driver, engine, clock = sim_engine(programs, Arrivals(times=(0.0,) * len(programs)), policy, hints=hints)
    engine.programs.turn_outcome = recording_outcome
    add = engine.add_request

    def recording_add(prompt, params=None, *, request_id=None, hints=None, arrival_time=None):
        submitted.append((request_id, hints, len(prompt)))
        return add(prompt, params, request_id=request_id, hints=hints, arrival_time=arrival_time)

    engine.add_request = recording_add
    runs = driver.run(engine)
    engine.check_integrity()
    return submitted, outcomes, runs


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_hints_of_turns_up_to_k_do_not_depend_on_the_turns_after_k(k):
    full, _, _ = replay_recording([LONG])
    cut, _, _ = replay_recording([truncated(LONG, k)])
    assert len(cut) == k + 1
    assert full[: k + 1] == cut


@pytest.mark.parametrize("policy", ["tether", "continuum", "infercept"])
@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_a_program_cut_after_a_tool_call_looks_the_same_up_to_its_cut(k, policy):
    """Nothing tells the engine a turn was the last: what it saw of turns 0..k is the same whether the program
    went on or stopped after turn k's tool call, and the client's end releases the program all the same."""
    full_hints, full_out, _ = replay_recording([LONG], policy=policy)
    cut_hints, cut_out, runs = replay_recording([truncated(LONG, k, keep_tool=True)], policy=policy)
    assert cut_hints == full_hints[: k + 1]
    assert cut_out == full_out[: k + 1]
    assert cut_out[-1][1] == TurnOutcome(LONG.turns[k].tool, False)
    assert runs[0].ended and runs[0].finish is not None


def test_online_requests_carry_program_and_turn_alone():
    submitted, _, _ = replay_recording([LONG])
    assert [h for _, h, _ in submitted] == [ProgramHints(program_id="long", turn=t) for t in range(5)]


def test_the_tool_is_revealed_at_turn_end_only():
    _, outcomes, _ = replay_recording([LONG])
    assert outcomes == [
        ("long#0", TurnOutcome("bash", False)),
        ("long#1", TurnOutcome("edit", False)),
        ("long#2", TurnOutcome("bash", False)),
        ("long#3", TurnOutcome("python", False)),
        ("long#4", TurnOutcome(None, False)),  # the last turn too: its client ends the program
    ]


def test_oracle_hints_add_the_true_remaining_turns_and_are_labelled():
    submitted, _, _ = replay_recording([LONG], hints="oracle")
    assert [h.remaining_turns for _, h, _ in submitted] == [4, 3, 2, 1, 0]
    engine = EngineConfig(model="tiny", num_kv_blocks=64, max_num_batched_tokens=512)
    s = ReplaySettings(("tether", "lmcache"), engine, rate=2.0, simulate=True, cost_model=H100_LLAMA31_8B)
    rows = run_replay(replace(s, hints="oracle"), PROGRAMS)
    assert [(r["label"], r["hints"]) for r in rows] == [
        ("tether+true-turns", "oracle"),
        ("lmcache+true-turns", "oracle"),
    ]
    assert [r["label"] for r in run_replay(s, PROGRAMS)] == ["tether", "lmcache"]


def test_unknown_hint_mode_is_named():
    with pytest.raises(ValueError, match="psychic"):
        ReplayDriver([LONG], Arrivals(times=(0.0,)), VirtualClock(), hints="psychic")


def test_predictor_sees_finished_programs_only():
    """While programs run, the predictor has observed only the ones that ended, with their true totals."""
    programs = [LONG, *PROGRAMS]
    driver, engine, _ = sim_engine(programs, Arrivals(times=(0.0, 0.0, 0.0, 0.0)))
    predictor = engine.programs.programs.turns
    seen = []
    observe = predictor.observe

    def recording(total):
        seen.append(total)
        observe(total)

    predictor.observe = recording
    runs = driver.run(engine)
    by_finish = sorted(runs, key=lambda r: r.finish)
    assert seen == [r.program.num_turns for r in by_finish]
    engine.check_integrity()


def test_the_driver_records_each_tool_pause_once():
    """The replay driver runs the trace's tools: it records each pause from a turn's end to its program's next
    request, once per tool call, and the engine reads them."""
    driver, engine, _ = sim_engine([LONG], Arrivals(times=(0.0,)))
    assert engine.programs.ctx.tool_stats is driver.tool_stats
    driver.run(engine)
    stats = driver.tool_stats
    assert (stats.count("bash"), stats.count("edit"), stats.count("python")) == (2, 1, 1)
    assert stats.running_mean("python") >= 0.4  # the trace's 0.4 s, plus the wait for the step that submits
    engine.check_integrity()
