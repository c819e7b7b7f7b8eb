"""Steady-state evaluation: programs drawn with replacement from a workload, several seeds, mean and range, and
ratios paired by seed with a bootstrap interval (``stats.py``).

A trace replayed once at a fixed rate is a burst that drains: every program arrives early and the tail of the
run is an emptying queue. ``draw_programs`` samples N programs with replacement (each seed its own sample and
its own Poisson arrivals), and ``ReplaySettings.window`` leaves the warm-up and cool-down ends out of the
averages, so the figures describe the engine at a steady load.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from dataclasses import replace

from tether.runtime.replay.runner import ReplaySettings, run_replay, solo_jct
from tether.runtime.replay.stats import best_baseline, find_label, paired_ratio
from tether.runtime.replay.workload import TraceProgram


def draw_programs(programs: list[TraceProgram], n: int, seed: int) -> list[TraceProgram]:
    """``n`` programs drawn uniformly with replacement, reproducible from ``seed``; the i-th draw is renamed
    ``<id>~<i>`` so that copies of one program are distinct programs to the engine."""
    if n < 1:
        raise ValueError(f"--draw must be at least 1, got {n}")
    rng = random.Random(f"tether-draw-{seed}")
    return [replace(p, program_id=f"{p.program_id}~{i}") for i, p in enumerate(rng.choices(programs, k=n))]


def run_seeds(
    settings: ReplaySettings,
    workload: list[TraceProgram],
    seeds: list[int],
    *,
    draw: int | None = None,
    solo: bool = False,
    on_progress: Callable[[str, int, int], None] | None = None,
    solo_memo: dict | None = None,
) -> dict:
    """Every policy on every seed (the seed picks the draw and the arrivals). Returns ``per_seed`` (the rows of
    each seed, and its solo bound when asked) and ``summary`` (per policy: mean, min and max over seeds)."""
    memo = {} if solo_memo is None else solo_memo
    per_seed = []
    for seed in seeds:
        s = replace(settings, seed=seed)
        programs = draw_programs(workload, draw, seed) if draw else workload
        entry: dict = {"seed": seed, "results": run_replay(s, programs, on_progress)}
        if solo:
            entry["solo_avg_jct_s"] = solo_jct(s, programs, memo)
        per_seed.append(entry)
    return {"per_seed": per_seed, "summary": summarize_seeds(per_seed)}


SUMMARY_FIELDS = ("avg_jct_s", "p50_jct_s", "p90_jct_s", "prefill_over_prompt", "preemptions")


def summarize_seeds(per_seed: list[dict]) -> list[dict]:
    """Per policy (in run order): mean, min and max over seeds of each summary field; the average JCT's paired
    ratios against vllm, lmcache and the best baseline where they ran (``stats.py``: mean and 95% bootstrap
    interval of the per-seed ratios); the solo bound's mean."""
    labels = [r["label"] for r in per_seed[0]["results"]]
    best = best_baseline(per_seed)
    bases = {"x_vllm": find_label(labels, "vllm"), "x_lmcache": find_label(labels, "lmcache"), "x_best": best}
    out = []
    for i, label in enumerate(labels):
        rows = [entry["results"][i] for entry in per_seed]
        doc: dict = {"policy": rows[0]["policy"], "label": label, "seeds": len(rows)}
        for name in SUMMARY_FIELDS:
            doc[name] = _spread([_field(r, name) for r in rows])
        for key, base in bases.items():
            if base is not None:
                doc[key] = paired_ratio(per_seed, label, base).as_dict()
        doc["kv_leaked_blocks"] = max(r["kv_leaked_blocks"] for r in rows)
        out.append(doc)
    solos = [e["solo_avg_jct_s"] for e in per_seed if "solo_avg_jct_s" in e]
    if solos:
        out.append({"policy": "solo", "label": "solo (bound)", "avg_jct_s": _spread(solos)})
    return out


def _field(row: dict, name: str) -> float:
    if name == "prefill_over_prompt":
        return row["prefill_tokens_computed"] / max(1, row["prompt_tokens"])
    return row[name]


def _spread(values: list[float]) -> dict:
    return {"mean": statistics.mean(values), "min": min(values), "max": max(values)}
