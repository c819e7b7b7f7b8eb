"""Replay: exact token accounting, pins through the engine, every policy leak-free, admission orders."""

from __future__ import annotations

import json

import pytest

from tether.runtime.costs import H100_LLAMA31_8B
from tether.runtime.engine.config import EngineConfig
from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.sequence import ProgramHints
from tether.runtime.policies import POLICIES, get_policy
from tether.runtime.replay.driver import Arrivals
from tether.runtime.replay.floor import PrefillFloor, prefill_floor
from tether.runtime.replay.runner import ReplaySettings, run_replay
from tether.runtime.replay.workload import TraceProgram, Turn, WorkloadError, load_workload


def program(
    pid: str, turns: list[tuple[int, int, str | None, float | None]], first_prompt: int
) -> TraceProgram:
    """(new_input, output, tool, seconds) per turn; prompt tokens follow the trace invariant."""
    out, prompt = [], 0
    for k, (new, output, tool, secs) in enumerate(turns):
        prompt = first_prompt if k == 0 else prompt + new
        out.append(Turn(prompt, prompt if k == 0 else new, output, tool, secs))
        prompt += output
    return TraceProgram(pid, tuple(out))


PROGRAMS = [
    program("a", [(0, 5, "bash", 0.2), (7, 4, "edit", 0.05), (3, 6, None, None)], first_prompt=40),
    program("b", [(0, 3, "bash", 0.5), (20, 2, None, None)], first_prompt=70),
    program(
        "c",
        [(0, 8, "python", 1.0), (5, 5, "bash", 0.1), (9, 3, "bash", 0.1), (2, 2, None, None)],
        first_prompt=33,
    ),
]
TOTAL_PROMPT = sum(t.prompt_tokens for p in PROGRAMS for t in p.turns)


def settings(policies, simulate: bool, kv_blocks: int = 64, **kw) -> ReplaySettings:
    engine = EngineConfig(model="tiny", num_kv_blocks=kv_blocks, max_num_batched_tokens=512)
    return ReplaySettings(
        tuple(policies),
        engine,
        rate=2.0,
        seed=3,
        simulate=simulate,
        cost_model=H100_LLAMA31_8B if simulate else None,
        **kw,
    )


@pytest.mark.parametrize("simulate", [True, False])
def test_three_program_replay_accounts_every_prompt_token(simulate):
    (r,) = run_replay(settings(["vllm"], simulate), PROGRAMS)
    assert r["programs"] == 3 and r["prompt_tokens"] == TOTAL_PROMPT == 518
    assert r["prefill_tokens_computed"] + r["cache_hit_tokens"] == r["prompt_tokens"]
    assert r["cache_hit_tokens"] > 0  # later turns reuse earlier turns' blocks
    assert r["kv_leaked_blocks"] == 0 and r["preemptions"] == 0
    assert r["p50_jct_s"] <= r["p90_jct_s"] <= r["makespan_s"]


def test_every_policy_finishes_every_program_without_leaks_under_contention():
    results = run_replay(settings(list(POLICIES), True, kv_blocks=14, concurrency=None), PROGRAMS * 3)
    for r in results:
        assert r["programs"] == 9, r["policy"]
        assert r["kv_leaked_blocks"] == 0, r["policy"]


def test_continuum_pin_is_hit_by_the_next_turn_in_simulation():
    (r,) = run_replay(settings(["continuum-fixed"], True), PROGRAMS)  # 2 s pins for tools not seen yet
    assert r["pins_created"] >= 1 and r["pins_hit"] >= 1
    assert r["pins_created"] == r["pins_hit"] + r["pins_expired"] + r["pins_dropped"]


def test_tether_keeps_context_so_prefill_is_only_new_tokens():
    (r,) = run_replay(settings(["tether"], True, kv_blocks=256), PROGRAMS)
    # Each turn recomputes only its new input plus the unfinished tail block of the previous context.
    assert r["prefill_tokens_computed"] == prefill_floor(PROGRAMS, 16).block_level
    assert r["pins_hit"] == sum(p.num_turns - 1 for p in PROGRAMS)


def test_prefill_floor_by_hand():
    b = PROGRAMS[1]  # prompt 70, output 3; then 20 new tokens: prompt 93, output 2
    # Block level: turn 1 left KV for 70 + 3 - 1 = 72 tokens, 4 whole blocks; 93 - 64 = 29 to compute.
    assert prefill_floor([b], 16) == PrefillFloor(
        prompt_tokens=163, token_level=90, block_level=99, block_size=16
    )
    # One-token blocks: only the last output token (never fed back) is recomputed beyond the new input.
    assert prefill_floor([b], 1).block_level == 91
    with pytest.raises(ValueError, match="block_size"):
        prefill_floor([b], 0)


def test_admission_orders_on_a_hand_built_queue():
    from tether.runtime.engine.builder import build_engine
    from tether.runtime.sim.backend import SimBackend
    from tether.runtime.sim.clock import VirtualClock

    def engine(policy):
        clock = VirtualClock()
        e = build_engine(
            EngineConfig(num_kv_blocks=64, policy=policy),
            backend=SimBackend(H100_LLAMA31_8B, clock),
            clock=clock.now,
        )
        return e, clock

    def add(e, clock, rid, pid, t, remaining):
        clock.sleep_until(t)
        return e.add_request(
            [1] * 20,
            SamplingParams(max_tokens=1),
            request_id=rid,
            hints=ProgramHints(program_id=pid, remaining_turns=remaining),
        )

    orders = {}
    for name in ("vllm", "tether", "autellix"):
        e, clock = engine(name)
        add(e, clock, "p1-t0", "p1", 0.0, 5)
        add(e, clock, "p2-t0", "p2", 1.0, 1)
        add(e, clock, "p3-t0", "p3", 2.0, 3)
        e.programs.programs.get("p1").attained_tokens = 5000  # autellix queue 3; the others are in queue 0
        orders[name] = [s.request_id for s in sorted(e.scheduler.waiting, key=e.scheduler.admission.priority)]
    assert orders["vllm"] == ["p1-t0", "p2-t0", "p3-t0"]  # request FCFS
    assert orders["tether"] == ["p2-t0", "p3-t0", "p1-t0"]  # fewest remaining turns first
    assert orders["autellix"] == ["p2-t0", "p3-t0", "p1-t0"]  # least attained service (p1 has 5000 tokens)


def test_unknown_policy_is_named():
    with pytest.raises(ValueError, match="no-such"):
        get_policy("no-such")


def test_workload_errors_name_the_line_and_field(tmp_path):
    bad = tmp_path / "w.jsonl"
    good = {
        "program_id": "x",
        "turns": [
            {
                "prompt_tokens": 10,
                "new_input_tokens": 10,
                "output_tokens": 2,
                "tool": "t",
                "tool_seconds": 0.1,
            },
            {
                "prompt_tokens": 14,
                "new_input_tokens": 2,
                "output_tokens": 1,
                "tool": None,
                "tool_seconds": None,
            },
        ],
    }
    bad.write_text(
        json.dumps(good)
        + "\n"
        + json.dumps(
            {
                **good,
                "program_id": "y",
                "turns": good["turns"][:1] + [{**good["turns"][1], "prompt_tokens": 99}],
            }
        )
        + "\n"
    )
    with pytest.raises(WorkloadError, match=r"w.jsonl:2: program 'y' turn 1: prompt_tokens 99"):
        load_workload(bad)


def test_scaling_keeps_the_invariant_exactly():
    scaled = PROGRAMS[2].scaled(0.37, 0.5)
    for prev, cur in zip(scaled.turns, scaled.turns[1:]):
        assert cur.prompt_tokens == prev.prompt_tokens + prev.output_tokens + cur.new_input_tokens
    assert scaled.turns[0].tool_seconds == 0.5


def test_arrivals_are_seeded():
    assert Arrivals.poisson(5, 2.0, 1) == Arrivals.poisson(5, 2.0, 1) != Arrivals.poisson(5, 2.0, 2)
