"""Compiled programs: the workload built from traces, the trace format's forked calls, and how replay runs them
(static hints, calls side by side, the join)."""

from __future__ import annotations

import json

import pytest

from tests.replay.test_hints import replay_recording, sim_engine
from tests.replay.test_replay import PROGRAMS, program
from tether.cli import main
from tether.runtime.engine.sequence import ProgramHints, TurnOutcome
from tether.runtime.replay.compiled import compile_programs, tool_durations
from tether.runtime.replay.driver import Arrivals
from tether.runtime.replay.floor import prefill_floor
from tether.runtime.replay.workload import (
    Call,
    TraceProgram,
    Turn,
    WorkloadError,
    load_workload,
    program_to_json,
)

# plan (bash 0.2 s) -> two calls side by side (bash 0.5 s, edit 0.1 s) -> answer
FORKED = TraceProgram(
    "wf",
    (
        Turn(40, 40, 5, "bash", 0.2),
        Turn(52, 7, 4, "bash", 0.5, (Call(6, "edit", 0.1),)),
        Turn(65, 3, 6, None, None),
    ),
    compiled=True,
)


def write(tmp_path, lines) -> str:
    path = tmp_path / "w.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


def test_a_forked_program_round_trips_through_the_trace_format(tmp_path):
    assert load_workload(write(tmp_path, [program_to_json(FORKED), program_to_json(PROGRAMS[0])])) == [
        FORKED,
        PROGRAMS[0],
    ]
    assert FORKED.num_calls == 4 and FORKED.turns[1].joined_output_tokens == 10


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("compiled"), 'parallel calls need "compiled": true'),
        (lambda d: d.update(compiled="yes"), "compiled must be true or false"),
        (
            lambda d: d["turns"][1]["parallel"][0].update(output_tokens=0),
            r"turn 1 parallel\[0\]: output_tokens",
        ),
        (
            lambda d: d["turns"][1]["parallel"][0].update(tool_seconds=None),
            r"parallel\[0\]: tool 'edit' has no",
        ),
        (lambda d: d["turns"][1].update(parallel={}), "parallel must be a list"),
        (lambda d: d["turns"][2].update(prompt_tokens=60), "turn 2: prompt_tokens 60 != previous prompt"),
        (
            lambda d: d["turns"][2].update(parallel=[{"output_tokens": 1, "tool": None}]),
            "last turn cannot fork",
        ),
    ],
)
def test_bad_forks_are_named(tmp_path, edit, message):
    doc = program_to_json(FORKED)
    edit(doc)
    with pytest.raises(WorkloadError, match=message):
        load_workload(write(tmp_path, [doc]))


def test_scaling_keeps_the_join_invariant():
    scaled = FORKED.scaled(0.5, 2.0)
    assert scaled.compiled
    assert scaled.turns[1].parallel == (Call(3, "edit", 0.2),)
    for prev, turn in zip(scaled.turns, scaled.turns[1:]):
        assert turn.prompt_tokens == prev.prompt_tokens + prev.joined_output_tokens + turn.new_input_tokens


def test_the_prefill_floor_counts_forked_calls_on_their_shared_prompt():
    floor = prefill_floor([FORKED], block_size=16)
    assert floor.prompt_tokens == 40 + 52 + 52 + 65
    assert floor.token_level == 40 + 7 + 3
    # 40; 52 reuses 2 blocks of the 44 KV tokens (20 computed); its fork recomputes 52 - 48 = 4; 65 reuses
    # min(55 // 16, 64 // 16) = 3 blocks (17 computed)
    assert floor.block_level == 40 + 20 + 4 + 17


def test_compiled_requests_say_what_the_workflow_fixes():
    submitted, outcomes, runs = replay_recording([FORKED], policy="tether")
    assert submitted == [
        ("wf#0", ProgramHints(program_id="wf", turn=0, next_tools=("bash",), remaining_turns=2), 40),
        (
            "wf#1",
            ProgramHints(
                program_id="wf", turn=1, next_tools=("bash",), remaining_turns=1, prefix_group="wf#1"
            ),
            52,
        ),
        (
            "wf#1.1",
            ProgramHints(
                program_id="wf", turn=1, next_tools=("edit",), remaining_turns=1, prefix_group="wf#1"
            ),
            52,
        ),
        ("wf#2", ProgramHints(program_id="wf", turn=2, remaining_turns=0, last_turn=True), 65),
    ]
    assert sorted(outcomes) == [
        ("wf#0", TurnOutcome("bash", False)),
        ("wf#1", TurnOutcome("bash", False)),
        ("wf#1.1", TurnOutcome("edit", False)),
        ("wf#2", TurnOutcome(None, True)),
    ]
    assert runs[0].ended and runs[0].prompt_tokens == 40 + 52 + 52 + 65


@pytest.mark.parametrize("policy", ["tether", "continuum", "lmcache", "vllm", "autellix", "infercept"])
def test_every_policy_runs_a_forked_program_to_its_end(policy):
    _, outcomes, runs = replay_recording([FORKED, PROGRAMS[1]], policy=policy)  # checks integrity
    assert all(r.ended for r in runs)
    assert len(runs[0].context) == 65 + 6  # the answer's prompt and output
    assert ("wf#2", TurnOutcome(None, True)) in outcomes


def test_the_join_starts_after_the_slowest_tool():
    driver, engine, clock = sim_engine([FORKED], Arrivals(times=(0.0,)))
    arrivals: dict[str, float] = {}
    outputs: dict[str, float] = {}
    add = engine.add_request

    def recording_add(prompt, params=None, *, request_id=None, hints=None, arrival_time=None):
        arrivals[request_id] = clock.now()
        return add(prompt, params, request_id=request_id, hints=hints, arrival_time=arrival_time)

    engine.add_request = recording_add
    step = engine.step

    def recording_step():
        outs = step()
        for out in outs:
            if out.finished:
                outputs[out.request_id] = clock.now()
        return outs

    engine.step = recording_step
    driver.run(engine)
    engine.check_integrity()
    assert arrivals["wf#1"] == arrivals["wf#1.1"] == pytest.approx(outputs["wf#0"] + 0.2)
    slowest = max(outputs["wf#1"] + 0.5, outputs["wf#1.1"] + 0.1)
    assert arrivals["wf#2"] == pytest.approx(slowest)


TRACE = [
    program(
        "a",
        [
            (0, 5, "bash", 0.2),
            (7, 4, "edit", 0.05),
            (3, 6, "bash", 0.3),
            (4, 2, "edit", 0.1),
            (5, 3, "bash", 0.4),
            (2, 2, "edit", 0.15),
            (6, 4, None, None),
        ],
        first_prompt=40,
    ),
    program(
        "b",
        [(0, 3, "bash", 0.5), (20, 2, "python", 1.5), (9, 4, "bash", 0.7), (3, 1, None, None)],
        first_prompt=70,
    ),
]


def test_compiled_programs_keep_their_templates_sizes_and_calls():
    programs = compile_programs(TRACE, 40, seed=3, fork=0.7, max_width=3)
    assert programs == compile_programs(TRACE, 40, seed=3, fork=0.7, max_width=3)  # deterministic
    pools = tool_durations(TRACE)
    assert pools == {"bash": [0.2, 0.3, 0.4, 0.5, 0.7], "edit": [0.05, 0.1, 0.15], "python": [1.5]}
    forked = 0
    for p in programs:
        template = next(t for t in TRACE if p.program_id.endswith("/" + t.program_id))
        assert p.compiled and p.num_calls == template.num_turns
        end = template.turns[-1].prompt_tokens + template.turns[-1].output_tokens
        assert p.turns[-1].prompt_tokens + p.turns[-1].joined_output_tokens == end
        assert p.turns[0].prompt_tokens == template.turns[0].prompt_tokens
        assert not p.turns[0].parallel and not p.turns[-1].parallel
        assert p.turns[-1].tool is None
        calls = [c for t in p.turns for c in t.calls]
        assert [c.output_tokens for c in calls] == [t.output_tokens for t in template.turns]
        assert [c.tool for c in calls[:-1]] == [t.tool for t in template.turns[:-1]]
        for c in calls[:-1]:
            assert c.tool_seconds in pools[c.tool]
        assert all(len(t.calls) <= 3 for t in p.turns)
        forked += sum(1 for t in p.turns if t.parallel)
    assert forked > 0
    assert not any(t.parallel for p in compile_programs(TRACE, 10, seed=3, fork=0.0) for t in p.turns)


@pytest.mark.parametrize(
    ("kw", "message"),
    [({"n": 0}, "n must be"), ({"fork": 1.5}, "fork must be"), ({"max_width": 1}, "max_width must be")],
)
def test_bad_compile_arguments_are_named(kw, message):
    args = {"n": 5, "fork": 0.5, "max_width": 4, **kw}
    n = args.pop("n")
    with pytest.raises(ValueError, match=message):
        compile_programs(TRACE, n, 0, **args)


def test_a_compiled_program_is_not_a_template():
    with pytest.raises(ValueError, match="program 'wf' is compiled already"):
        compile_programs([*TRACE, FORKED], 5, 0)


def test_the_cli_writes_a_workload_replay_reads(tmp_path, capsys):
    src = write(tmp_path, [program_to_json(p) for p in TRACE])
    out = tmp_path / "compiled.jsonl"
    assert main(["workload", "compile", "--from", src, "--programs", "7", "--seed", "1", "-o", str(out)]) == 0
    programs = load_workload(out)
    assert len(programs) == 7 and all(p.compiled for p in programs)
    assert programs == compile_programs(TRACE, 7, seed=1)
    assert "7 programs" in capsys.readouterr().err
    assert main(["workload", "compile", "--from", str(tmp_path / "none.jsonl"), "-o", str(out)]) == 2
    endpoint = ["replay", "--workload", str(out), "--endpoint", "http://127.0.0.1:1/v1", "--rate", "1"]
    assert main(endpoint) == 2  # refused before any request
    assert "is compiled" in capsys.readouterr().err


def test_http_replay_refuses_compiled_programs_by_name():
    from tether.runtime.replay.http import HTTPReplayDriver

    with pytest.raises(ValueError, match="program 'wf' is compiled"):
        HTTPReplayDriver(None, "http://127.0.0.1:1/v1", "m", [PROGRAMS[0], FORKED], Arrivals(times=(0.0, 0.0)))
