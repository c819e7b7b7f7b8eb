"""The engine observes the pause between a program's turns into the deployment's ``ToolDurationStats`` it was
given, unless the tool runner measures the calls itself (``observe_tools=False``: no call counted twice)."""

from __future__ import annotations

import pytest

from tether.runtime.engine.config import EngineConfig
from tether.runtime.engine.llm_engine import LLMEngine
from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.sequence import ProgramHints
from tether.tools.durations import ToolDurationStats

PARAMS = SamplingParams(temperature=0.0, max_tokens=4, ignore_eos=True)


@pytest.mark.parametrize("observe", [True, False])
def test_engine_program_pause_is_observed_into_the_given_stats(observe):
    stats = ToolDurationStats()
    engine = LLMEngine(EngineConfig(model="tiny", num_kv_blocks=32), tool_stats=stats, observe_tools=observe)
    assert engine.programs.ctx.tool_stats is stats
    for turn in range(2):
        engine.add_request(
            [3] * (20 + turn), PARAMS, request_id=f"t{turn}", hints=ProgramHints("p", turn, next_tool="bash")
        )
        while engine.has_unfinished():
            engine.step()
    assert stats.count("bash") == (1 if observe else 0)
    engine.end_program("p")
    engine.check_integrity()
