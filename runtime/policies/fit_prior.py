"""``python -m tether.runtime.policies.fit_prior [TRACE ...]``: refit ``turns_prior.json``, the offline prior of
``RemainingWorkPredictor``: the total turns of every program in the given traces (default: the shared
workloads). Only finished, recorded programs are read."""

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
    totals, parts = [], []
    for trace in traces:
        programs = load_workload(trace)
        totals += [p.num_turns for p in programs]
        parts.append(f"{Path(trace).name}: {len(programs)}")
    doc = {
        "source": f"total turns of every program in {', '.join(parts)}, fitted offline; regenerate with "
        "`python -m tether.runtime.policies.fit_prior`",
        "total_turns": sorted(totals),
    }
    PRIOR_PATH.write_text(json.dumps(doc) + "\n")
    print(f"{PRIOR_PATH}: {len(totals)} programs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
