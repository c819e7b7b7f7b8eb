"""The hints rule: a replayed trace program's requests never carry its future."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.replay.test_replay import PROGRAMS, program
from tether.runtime.costs import H100_LLAMA31_8B
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


def sim_engine(policy: str = "tether") -> tuple[LLMEngine, VirtualClock]:
    """A simulated H100 engine of 64 KV blocks on a virtual clock."""
    clock = VirtualClock()
    engine = LLMEngine(
        EngineConfig(num_kv_blocks=64, policy=policy),
        backend=SimBackend(H100_LLAMA31_8B, clock),
        clock=clock.now,
    )
    return engine, clock


def replay_recording(programs: list[TraceProgram], hints: str = "online", policy: str = "tether"):
    """Replays in simulation; returns every request's (hints, prompt length) and every turn end's outcome."""
    engine, clock = sim_engine(policy)
    submitted, outcomes = [], []
    add = engine.add_request

    def recording_add(prompt, params=None, *, request_id=None, hints=None, arrival_time=None):
        submitted.append((request_id, hints, len(prompt)))
        return add(prompt, params, request_id=request_id, hints=hints, arrival_time=arrival_time)

    engine.add_request = recording_add
    driver = ReplayDriver(engine, programs, Arrivals(times=(0.0,) * len(programs)), clock, hints=hints)
    reveal = engine.turn_outcome

    def recording_outcome(seq):
        out = reveal(seq)
        outcomes.append((seq.request_id, out))
        return out

    engine.turn_outcome = recording_outcome
    runs = driver.run()
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
    engine, clock = sim_engine()
    with pytest.raises(ValueError, match="psychic"):
        ReplayDriver(engine, [LONG], Arrivals(times=(0.0,)), clock, hints="psychic")


def test_predictor_sees_finished_programs_only():
    """While programs run, the predictor has observed only the ones that ended, with their true totals."""
    engine, clock = sim_engine()
    predictor = engine.programs.programs.turns
    seen = []
    observe = predictor.observe

    def recording(total):
        seen.append(total)
        observe(total)

    predictor.observe = recording
    programs = [LONG, *PROGRAMS]
    driver = ReplayDriver(engine, programs, Arrivals(times=(0.0, 0.0, 0.0, 0.0)), clock)
    runs = driver.run()
    by_finish = sorted(runs, key=lambda r: r.finish)
    assert seen == [r.program.num_turns for r in by_finish]
    engine.check_integrity()
