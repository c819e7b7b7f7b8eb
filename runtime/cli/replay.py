"""``tether replay``: replay an agent workload against scheduling policies (real engine or simulation)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_POLICIES = "vllm,lmcache,infercept,autellix,continuum,continuum-fixed,tether"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="replay an agent workload trace against scheduling policies")
    p.add_argument("--workload", required=True, help="a JSONL trace (../shared/workloads/*.jsonl)")
    p.add_argument("--programs", type=int, default=None, help="replay the first N programs")
    load = p.add_mutually_exclusive_group()
    load.add_argument("--rate", type=float, default=None, help="Poisson arrivals, programs per second")
    load.add_argument("--concurrency", type=int, default=None, help="closed loop: N programs at a time")
    p.add_argument("--policies", default=DEFAULT_POLICIES)
    p.add_argument("--token-scale", type=float, default=1.0, help="multiply token counts (say so in figures)")
    p.add_argument("--time-scale", type=float, default=1.0, help="multiply tool seconds")
    p.add_argument("--kv-blocks", type=int, default=None, help="GPU KV blocks (contention is set here)")
    p.add_argument(
        "--cpu-kv-blocks", type=int, default=None, help="host KV blocks for policies with a CPU tier"
    )
    p.add_argument("--block-size", type=int, default=16)
    p.add_argument("--max-num-batched-tokens", type=int, default=8192)
    p.add_argument("--model", default="tiny")
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--simulate", action="store_true", help="virtual clock and a cost model instead of the model"
    )
    p.add_argument(
        "--cost-model", default=None, help="h100-llama3.1-8b (default with --simulate), tiny-cpu, or a JSON"
    )
    p.add_argument(
        "--solo", action="store_true", help="also measure the solo lower bound (always with --sweep)"
    )
    p.add_argument("--sweep", default=None, help="comma-separated rates: each policy's capacity (simulation)")
    p.add_argument("--plot", default=None, help="with --sweep: write rate vs average JCT as a PNG")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the results to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from runtime.replay.bench import run_replay, solo_jct
    from runtime.replay.floor import prefill_floor
    from runtime.replay.report import format_floor, format_table, progress_printer
    from runtime.replay.sweep import plot_sweep, run_sweep
    from runtime.replay.workload import WorkloadError

    try:
        settings, programs = _settings(args)
    except (WorkloadError, ValueError) as exc:
        print(f"tether replay: {exc}", file=sys.stderr)
        return 2
    progress = None if args.quiet else progress_printer(sys.stderr)
    doc: dict = {"workload": str(args.workload), "settings": _settings_doc(args, settings, len(programs))}
    floor = prefill_floor(programs, args.block_size)
    doc["prefill_floor"] = floor.as_dict()
    if args.sweep:
        rates = [float(r) for r in args.sweep.split(",")]
        sweep = run_sweep(settings, programs, rates, progress)
        doc.update(sweep)
        if args.plot:
            plot_sweep(sweep, Path(args.plot), title=f"{Path(args.workload).name}, {len(programs)} programs")
        print(format_table(sweep["results_at_rate"][-1]["results"], sweep["solo_avg_jct_s"]))
        for policy, cap in sweep["capacity_programs_per_s"].items():
            print(f"capacity {policy:16s} {cap:.4f} programs/s")
    else:
        doc["results"] = run_replay(settings, programs, progress)
        solo = solo_jct(settings, programs) if args.solo else None
        if solo is not None:
            doc["solo_avg_jct_s"] = solo
        print(format_table(doc["results"], solo))
    print(format_floor(floor))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2))
    return 0


def _settings(args: argparse.Namespace):
    from runtime.engine.config import EngineConfig
    from runtime.policies import POLICIES
    from runtime.replay.bench import ReplaySettings
    from runtime.replay.workload import load_workload
    from runtime.sim.cost_model import load_cost_model

    programs = load_workload(args.workload)[: args.programs]
    programs = [p.scaled(args.token_scale, args.time_scale) for p in programs]
    policies = tuple(p.strip() for p in args.policies.split(",") if p.strip())
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown policies {unknown}; known: {', '.join(POLICIES)}")
    if args.rate is None and args.concurrency is None and not args.sweep:
        raise ValueError("give --rate R, --concurrency C or --sweep RATES")
    if args.simulate and args.kv_blocks is None:
        raise ValueError("--simulate needs --kv-blocks (how much KV memory the simulated GPU has)")
    engine = EngineConfig(
        model=args.model,
        device=args.device,
        block_size=args.block_size,
        num_kv_blocks=args.kv_blocks,
        max_num_batched_tokens=args.max_num_batched_tokens,
        num_cpu_kv_blocks=args.cpu_kv_blocks,
        seed=args.seed,
        cost_model=args.cost_model,
    )
    cost = load_cost_model(args.cost_model or "h100-llama3.1-8b") if args.simulate else None
    settings = ReplaySettings(policies, engine, args.rate, args.concurrency, args.seed, args.simulate, cost)
    return settings, programs


def _settings_doc(args: argparse.Namespace, settings, n: int) -> dict:
    return {
        "programs": n,
        "rate": args.rate,
        "concurrency": args.concurrency,
        "policies": list(settings.policies),
        "token_scale": args.token_scale,
        "time_scale": args.time_scale,
        "kv_blocks": args.kv_blocks,
        "cpu_kv_blocks": args.cpu_kv_blocks,
        "block_size": args.block_size,
        "model": args.model,
        "simulate": args.simulate,
        "cost_model": settings.cost_model.name if settings.cost_model else None,
        "seed": args.seed,
        "max_num_batched_tokens": args.max_num_batched_tokens,
    }
