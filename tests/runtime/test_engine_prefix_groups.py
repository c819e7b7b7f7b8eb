"""The tether policy's use of ``ProgramHints.prefix_group`` (``tether:groups=on``; off by default since it cost
3.6% on compiled programs, docs/benchmarks.md): once a request of a prefix group is admitted, the group's other
requests count as resident, so they are admitted next and hit the prefix it computed."""

from __future__ import annotations

import pytest

from tether.runtime.engine.builder import build_engine
from tether.runtime.engine.config import EngineConfig
from tether.runtime.engine.llm_engine import LLMEngine
from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.sequence import ProgramHints

PARAMS = SamplingParams(temperature=0.0, max_tokens=8, ignore_eos=True)
PREFIX = [(7 * i) % 250 + 1 for i in range(48)]  # three full blocks of 16


def admitted_after_group(policy: str) -> tuple[list[str], LLMEngine]:
    """``a`` (group g) runs; then ``x`` (another program, one turn left: ranked first by index) and ``b`` (g)
    wait for the one free slot."""
    engine = build_engine(EngineConfig(model="tiny", num_kv_blocks=64, max_num_seqs=2, policy=policy))
    group = ProgramHints("p", 0, remaining_turns=1, prefix_group="g")
    engine.add_request(PREFIX + [1, 2, 3], PARAMS, request_id="a", hints=group)
    engine.step()
    engine.add_request([9] * 20, PARAMS, request_id="x", hints=ProgramHints("q", 0, remaining_turns=0))
    engine.add_request(PREFIX + [4, 5, 6], PARAMS, request_id="b", hints=group)
    engine.step()
    return [s.request_id for s in engine.scheduler.running], engine


def test_a_prefix_group_is_admitted_together_and_shares_its_prefix():
    running, engine = admitted_after_group("tether:groups=on")
    assert running == ["a", "b"] or running == ["b", "a"]
    b = next(s for s in engine.scheduler.running if s.request_id == "b")
    assert b.num_cached_tokens == len(PREFIX)
    assert [s.request_id for s in engine.scheduler.waiting] == ["x"]
    engine.check_integrity()
    for pid in ("p", "q"):
        engine.end_program(pid)


@pytest.mark.parametrize("policy", ["tether", "vllm"])
def test_without_groups_the_order_is_the_policys(policy):
    running, engine = admitted_after_group(policy)  # tether: x's index is higher; vllm: x arrived first
    assert sorted(running) == ["a", "x"]
    engine.check_integrity()
    for pid in ("p", "q"):
        engine.end_program(pid)
