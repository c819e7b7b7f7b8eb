"""Ratios paired by seed across separate ``tether replay --json`` runs of the same seeds and draws.

    .venv/bin/python bench/pair_runs.py RUN.json [RUN.json ...] --rate R --against LABEL [--against LABEL ...]

A simulation reads only its own clock, so two invocations with the same workload, seeds, draw size, rate and
engine settings replay the same programs at the same arrivals. An ablation can therefore run in its own
invocation and still pair, seed by seed, with a sweep's rows (``tether/runtime/replay/stats.py``). Each file is a plain
run or a sweep (``--rate`` picks the point). The files' seeds must match, and this is checked. Prints, per
label, the mean average JCT, each paired ratio (mean [95% bootstrap interval]) and prefill / prompt. A label
that an earlier file already holds (a policy's default changed between runs) is renamed ``LABEL@FILE-STEM``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from tether.runtime.replay.stats import paired_ratio


def per_seed_at(path: str, rate: float) -> list[dict]:
    doc = json.load(open(path))
    if "results_at_rate" in doc:
        return next(p for p in doc["results_at_rate"] if p["rate"] == rate)["per_seed"]
    if doc["settings"]["rate"] != rate:
        raise SystemExit(f"{path}: rate {doc['settings']['rate']}, not {rate}")
    return doc["per_seed"]


def merged(paths: list[str], rate: float) -> list[dict]:
    out = [{"seed": e["seed"], "results": list(e["results"])} for e in per_seed_at(paths[0], rate)]
    for path in paths[1:]:
        extra = per_seed_at(path, rate)
        if [e["seed"] for e in extra] != [e["seed"] for e in out]:
            raise SystemExit(f"{path}: seeds {[e['seed'] for e in extra]} differ from {[e['seed'] for e in out]}")
        taken = {r["label"] for r in out[0]["results"]}
        for entry, more in zip(out, extra):
            for row in more["results"]:
                if row["label"] in taken:
                    row = {**row, "label": f"{row['label']}@{Path(path).stem}"}
                entry["results"].append(row)
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--against", action="append", required=True, help="a label to pair every row against")
    args = p.parse_args(argv)
    per_seed = merged(args.runs, args.rate)
    for label in [r["label"] for r in per_seed[0]["results"]]:
        rows = [next(r for r in e["results"] if r["label"] == label) for e in per_seed]
        cells = []
        for base in args.against:
            r = paired_ratio(per_seed, label, base)
            cells.append(f"x {base} {r.mean:.3f} [{r.lo:.3f}, {r.hi:.3f}]")
        jct = statistics.mean(r["avg_jct_s"] for r in rows)
        prefill = statistics.mean(r["prefill_tokens_computed"] / max(1, r["prompt_tokens"]) for r in rows)
        print(f"{label:24s} avg JCT {jct:7.1f}  {'  '.join(cells)}  prefill/prompt {prefill:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
