"""The engine reads the deployment's ``ToolDurationStats`` it was given and never writes them: the tool runner
(the local runner, the replay driver, the server's program sessions for remote clients) is their only writer,
so no call is counted twice."""

from __future__ import annotations

from tether.runtime.engine.builder import build_engine
from tether.runtime.engine.config import EngineConfig
from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.sequence import ProgramHints
from tether.tools.durations import ToolDurationStats

PARAMS = SamplingParams(temperature=0.0, max_tokens=4, ignore_eos=True)


def test_engine_reads_the_given_stats_and_records_no_pause():
    stats = ToolDurationStats()
    engine = build_engine(EngineConfig(model="tiny", num_kv_blocks=32), tool_stats=stats)
    assert engine.programs.ctx.tool_stats is stats
    for turn in range(2):
        engine.add_request(
            [3] * (20 + turn), PARAMS, request_id=f"t{turn}", hints=ProgramHints("p", turn, next_tool="bash")
        )
        while engine.has_unfinished():
            engine.step()
    assert stats.count("bash") == 0
    engine.end_program("p")
    engine.check_integrity()
