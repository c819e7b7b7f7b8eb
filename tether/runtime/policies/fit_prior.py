"""``python -m tether.runtime.policies.fit_prior [TRACE ...]``: refit ``turns_prior.json``, the offline prior of
``RemainingWorkPredictor``: the total turns of every program in the given traces (default: the shared
workloads), kept per trace (by file stem). Only finished, recorded programs are read.

Per trace, so that an evaluation never uses a prior fitted on what it evaluates: replaying a trace, the engine
leaves that trace's totals out (leave-one-trace-out: ``EngineConfig.turns_prior_exclude``, set by ``tether
replay`` to its workload's stem)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tether.runtime.policies.predictor import PRIOR_PATH
from tether.runtime.replay.workload import load_workload

DEFAULT_TRACES = (
    "../shared/workloads/terminal_bench_agents.jsonl",
    "../shared/workloads/swe_smith_agents.jsonl",
)


def main(argv: list[str]) -> int:
    traces = argv or list(DEFAULT_TRACES)
    per_trace, parts = {}, []
    for trace in traces:
        programs = load_workload(trace)
        per_trace[Path(trace).stem] = sorted(p.num_turns for p in programs)
        parts.append(f"{Path(trace).name}: {len(programs)}")
    doc = {
        "source": f"total turns of every program in {', '.join(parts)}, fitted offline, per trace; regenerate "
        "with `python -m tether.runtime.policies.fit_prior`",
        "traces": per_trace,
    }
    PRIOR_PATH.write_text(json.dumps(doc) + "\n")
    print(f"{PRIOR_PATH}: {sum(map(len, per_trace.values()))} programs in {len(per_trace)} traces")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
