"""``tether replay``: replay an agent workload against scheduling policies (real engine or simulation), or
over HTTP against any OpenAI-compatible server (``--endpoint``)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

DEFAULT_POLICIES = "vllm,lmcache,infercept,autellix,continuum,continuum-fixed,tether"
DEFAULT_SEEDS = (0, 1, 2, 3, 4)  # a simulated steady state: five draws ...
DEFAULT_DRAW = 300  # ... of 300 programs each


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="replay an agent workload trace against scheduling policies")
    _add_workload_args(p)
    _add_engine_args(p)
    _add_sampling_args(p)
    _add_output_args(p)
    _add_http_args(p)
    p.set_defaults(func=run)


def _add_workload_args(p: argparse.ArgumentParser) -> None:
    """What is replayed and how: the trace, its programs, their arrivals, the policies and the scales."""
    p.add_argument("--workload", required=True, help="a JSONL trace (../shared/workloads/*.jsonl)")
    p.add_argument("--programs", type=int, default=None, help="replay the first N programs")
    p.add_argument(
        "--draw",
        type=int,
        default=None,
        help=f"steady state: draw N programs with replacement (per seed), Poisson arrivals; the first and last "
        f"--window of them are left out of the averages (default {DEFAULT_DRAW} with --simulate under --rate or "
        "--sweep; 0: the workload as recorded)",
    )
    p.add_argument(
        "--window",
        type=float,
        default=None,
        help="fraction of programs (by arrival) left out at each end of the averages (default 0.1 with --draw, "
        "else 0)",
    )
    p.add_argument(
        "--hints",
        choices=("online", "oracle"),
        default="online",
        help="online (default): requests carry only what a server knows; oracle: add each trace program's true "
        "remaining turns, labelled +true-turns (not a bound: the same policy told more)",
    )
    load = p.add_mutually_exclusive_group()
    load.add_argument("--rate", type=float, default=None, help="Poisson arrivals, programs per second")
    load.add_argument("--concurrency", type=int, default=None, help="closed loop: N programs at a time")
    p.add_argument("--policies", default=None, help=f"comma-separated (default {DEFAULT_POLICIES})")
    p.add_argument("--token-scale", type=float, default=1.0, help="multiply token counts (say so in figures)")
    p.add_argument("--time-scale", type=float, default=1.0, help="multiply tool seconds")


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    """The engine the policies schedule: KV memory, batch, the model, or the simulation's cost model."""
    p.add_argument("--kv-blocks", type=int, default=None, help="GPU KV blocks (contention is set here)")
    p.add_argument(
        "--cpu-kv-blocks",
        default=None,
        help="host KV blocks for policies with a CPU tier: a count, or a multiple of --kv-blocks such as 1x or "
        "4x (default 4x)",
    )
    p.add_argument("--block-size", type=int, default=16)
    p.add_argument("--max-num-batched-tokens", type=int, default=8192)
    p.add_argument(
        "--model", default="tiny", help="the real engine's model: tiny, smollm2, a .gguf file or a directory"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="the real engine's torch threads on CPU (default: usable CPUs less one; ignored by --simulate)",
    )
    p.add_argument(
        "--simulate", action="store_true", help="virtual clock and a cost model instead of the model"
    )
    p.add_argument(
        "--cost-model", default=None, help="h100-llama3.1-8b (default with --simulate), tiny-cpu, or a JSON"
    )
    p.add_argument(
        "--replicas",
        type=int,
        default=None,
        help="with --simulate: a cluster of N simulated engines behind --router (docs/cluster.md); --rate is the "
        "cluster's",
    )
    p.add_argument(
        "--router", default="program", help="with --replicas: program, pow2, prefix or session (comma-separated)"
    )


def _add_sampling_args(p: argparse.ArgumentParser) -> None:
    """What is measured: the solo bound, a rate sweep and its plot, the seeds."""
    p.add_argument(
        "--solo", action="store_true", help="also measure the solo lower bound (always with --sweep)"
    )
    p.add_argument("--sweep", default=None, help="comma-separated rates: each policy's capacity (simulation)")
    p.add_argument("--plot", default=None, help="with --sweep: write rate vs average JCT as a PNG")
    p.add_argument("--seed", type=int, default=None, help="one seed (default 0; see --seeds)")
    p.add_argument(
        "--seeds",
        default=None,
        help="comma-separated seeds (each its own draw and arrivals): mean with a 95%% bootstrap interval of "
        f"the paired ratios (default {','.join(map(str, DEFAULT_SEEDS))} with --simulate under --rate or "
        "--sweep, else one)",
    )


def _add_output_args(p: argparse.ArgumentParser) -> None:
    """Where results go: a JSON file, the progress bar, a recorded trace."""
    p.add_argument("--json", default=None, help="write the results to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--trace",
        action="store_true",
        help="record the run (one trace per policy: programs, turns, tool pauses, the engine's events) for "
        "`tether ui` and `tether trace export` (one seed, no sweep)",
    )
    p.add_argument("--trace-dir", default=None, help="where --trace records runs (default: ./.tether/runs)")


def _add_http_args(p: argparse.ArgumentParser) -> None:
    """``--endpoint`` and its companions: replay against a running OpenAI-compatible server."""
    http = p.add_argument_group("over HTTP", "replay against a running OpenAI-compatible server")
    http.add_argument(
        "--endpoint",
        default=None,
        help="the server's OpenAI base URL, with /v1 (http://127.0.0.1:8000/v1); its own policy is measured",
    )
    http.add_argument(
        "--served-model", default=None, help="the requests' model field (default: the first of GET /models)"
    )
    http.add_argument("--api-key", default=None, help="sent as Authorization: Bearer KEY")
    http.add_argument("--label", default="http", help="the result row's name (default http)")


def run(args: argparse.Namespace) -> int:
    from tether.runtime.replay.driver import ReplayError
    from tether.runtime.replay.floor import prefill_floor
    from tether.runtime.replay.report import (
        format_floor,
        progress_printer,
    )
    from tether.runtime.replay.steady import draw_programs, run_seeds
    from tether.runtime.replay.workload import WorkloadError

    if args.endpoint:
        return _run_endpoint(args)
    try:
        settings, programs, seeds = _settings(args)
    except (WorkloadError, ValueError) as exc:
        print(f"tether replay: {exc}", file=sys.stderr)
        return 2
    recorder = None
    if args.trace:
        if args.sweep or len(seeds) > 1:
            print("tether replay: --trace records one run: not with --sweep or --seeds", file=sys.stderr)
            return 2
        settings, recorder = _recorded(args, settings)
    progress = None if args.quiet else progress_printer(sys.stderr)
    doc: dict = {
        "workload": str(args.workload),
        "settings": _settings_doc(args, settings, len(programs), seeds),
    }
    floor_programs = draw_programs(programs, args.draw, seeds[0]) if args.draw else programs
    floor = prefill_floor(floor_programs, args.block_size)
    doc["prefill_floor"] = floor.as_dict()
    try:
        if args.sweep:
            measured = _sweep(args, settings, programs, seeds, progress)
        else:
            measured = run_seeds(settings, programs, seeds, draw=args.draw, solo=args.solo, on_progress=progress)
    except ReplayError as exc:  # one line naming the program and turn; the recorded run ends as failed
        if recorder is not None:
            recorder.end("failed", error=str(exc))
        print(f"\ntether replay: {exc}", file=sys.stderr)
        return 1
    doc.update(measured)
    if not args.sweep:
        doc["results"] = measured["per_seed"][0]["results"]
        _print_point(measured, seeds, settings.replicas is not None)
    _print_notes(doc["settings"]["window"], args.hints)
    print(format_floor(floor))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2))
    if recorder is not None:
        recorder.end("ok", results=doc.get("results"), settings=doc["settings"])
        print(f"trace: {recorder.dir} (tether ui --trace-dir {recorder.dir.parent})")
    return 0


def _print_point(point: dict, seeds: list[int], cluster: bool) -> None:
    from tether.runtime.replay.report import format_cluster, format_summary, format_table

    results = point["per_seed"][0]["results"]
    if len(seeds) == 1:
        print(format_table(results, point["per_seed"][0].get("solo_avg_jct_s")))
    else:
        print(format_summary(point["summary"]))
    if cluster:
        print(f"the cluster (seed {seeds[0]}):\n{format_cluster(results)}")


def _recorded(args: argparse.Namespace, settings):
    """``--trace``: a ``RunRecorder`` for this replay, and ``settings`` that record into it."""
    from dataclasses import replace

    from tether.runtime.tracing import RunRecorder

    recorder = RunRecorder(
        "replay",
        Path(args.workload).stem,
        trace_dir=args.trace_dir,
        meta={"policies": list(settings.policies), "simulate": settings.simulate},
    )
    return replace(settings, trace=recorder.trace), recorder


def _sweep(args: argparse.Namespace, settings, programs: list, seeds: list[int], progress) -> dict:
    """``--sweep``: every policy at every rate, plotted with ``--plot``, then printed (each rate's summary, the
    capacities, the knee); returns the sweep's part of the result document."""
    from tether.runtime.replay.sweep import plot_sweep, run_sweep

    rates = [float(r) for r in args.sweep.split(",")]
    sweep = run_sweep(settings, programs, rates, progress, seeds=seeds, draw=args.draw)
    if args.plot:
        drawn = (
            f"{args.draw} programs drawn from {len(programs)}" if args.draw else f"{len(programs)} programs"
        )
        where = f"simulated ({settings.cost_model.name})" if args.simulate else "real engine"
        plot_sweep(sweep, Path(args.plot), title=f"{Path(args.workload).name}, {drawn}\n{where}")
    _print_sweep(sweep)
    return sweep


def _print_sweep(sweep: dict) -> None:
    """Each rate's summary, each policy's capacity, and where the strongest baseline's knee is."""
    from tether.runtime.replay.report import format_summary
    from tether.runtime.replay.sweep import CAPACITY_SLOWDOWN

    for point in sweep["results_at_rate"]:
        print(f"rate {point['rate']} programs/s")
        print(format_summary(point["summary"]))
    for label, cap in sweep["capacity_programs_per_s"].items():
        print(f"capacity ({CAPACITY_SLOWDOWN:g}x solo) {label:16s} {cap:.4f} programs/s")
    k = sweep["knee"]
    if k is not None:
        where = (
            f"{k['rate']:.4f} programs/s (between {k['between'][0]} and {k['between'][1]})"
            if k["rate"]
            else "not inside the swept rates"
        )
        print(f"the strongest baseline, {k['baseline']}, reaches {CAPACITY_SLOWDOWN:g}x solo at {where}")


def _print_notes(window: float, hints: str) -> None:
    """What the averages leave out, and that oracle hints were given."""
    if window:
        print(
            f"averages leave out the first and last {window:.0%} of programs by arrival (warm-up, cool-down)"
        )
    if hints == "oracle":
        print(
            "hints: oracle -- every policy saw each program's true remaining turns (+true-turns): not a bound"
        )


def _sampling(args: argparse.Namespace) -> list[int]:
    """The seeds, with ``args.draw`` and ``args.seed`` resolved in place: a simulated steady state (``--simulate``
    under Poisson arrivals, not ``--trace``) defaults to ``DEFAULT_SEEDS`` draws of ``DEFAULT_DRAW`` programs;
    anything else to one seed and the workload as recorded."""
    steady = args.simulate and args.concurrency is None and not args.trace
    if args.draw is None:
        args.draw = DEFAULT_DRAW if steady else None
    elif args.draw == 0:
        args.draw = None
    if args.seeds:
        seeds = [int(x) for x in args.seeds.split(",")]
    elif args.seed is not None:
        seeds = [args.seed]
    else:
        seeds = list(DEFAULT_SEEDS) if steady else [0]
    args.seed = seeds[0]
    return seeds


def _settings(args: argparse.Namespace):
    from tether.runtime.costs import load_cost_model
    from tether.runtime.engine.config import EngineConfig
    from tether.runtime.engine.threads import resolve_threads
    from tether.runtime.policies import get_policy
    from tether.runtime.replay.runner import ReplaySettings
    from tether.runtime.replay.workload import load_workload

    seeds = _sampling(args)
    programs = load_workload(args.workload)[: args.programs]
    if args.draw is not None and args.concurrency is not None:
        raise ValueError(
            "--draw samples a steady state under Poisson arrivals: use --rate, not --concurrency"
        )
    programs = [p.scaled(args.token_scale, args.time_scale) for p in programs]
    policies = tuple(p.strip() for p in (args.policies or DEFAULT_POLICIES).split(",") if p.strip())
    for policy in policies:
        get_policy(policy)  # a ValueError names an unknown policy or option
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
        num_cpu_kv_blocks=_cpu_blocks(args.cpu_kv_blocks, args.kv_blocks),
        seed=args.seed,
        cost_model=args.cost_model,
        num_threads=None if args.simulate or args.device != "cpu" else resolve_threads(args.threads).threads,
        turns_prior_exclude=Path(args.workload).stem,  # never a prior fitted on the trace being evaluated
    )
    cost = load_cost_model(args.cost_model or "h100-llama3.1-8b") if args.simulate else None
    window = args.window if args.window is not None else (0.1 if args.draw else 0.0)
    settings = ReplaySettings(
        policies, engine, args.rate, args.concurrency, seeds[0], args.simulate, cost, args.hints, window
    )
    if args.replicas is not None:
        settings = replace(settings, replicas=args.replicas, routers=_routers(args))
    return settings, programs, seeds


def _routers(args: argparse.Namespace) -> tuple[str, ...]:
    """``--router`` names, checked; a cluster runs only in simulation."""
    from tether.runtime.cluster.routers import parse_routers

    if not args.simulate:
        raise ValueError("--replicas runs a simulated cluster: add --simulate")
    if args.replicas < 1:
        raise ValueError(f"--replicas must be >= 1, got {args.replicas}")
    return parse_routers(args.router)


def _run_endpoint(args: argparse.Namespace) -> int:
    """``--endpoint``: one row, the server's own policy, the same programs and seeded arrivals."""
    import asyncio

    from tether.runtime.replay.http import ReplayHTTPError, replay_endpoint
    from tether.runtime.replay.report import progress_printer
    from tether.runtime.replay.workload import WorkloadError

    args.seed = 0 if args.seed is None else args.seed
    try:
        programs, arrivals = _endpoint_programs(args)
    except (WorkloadError, ValueError) as exc:
        print(f"tether replay: {exc}", file=sys.stderr)
        return 2
    ignored = [flag for flag, name in _HTTP_IGNORED if getattr(args, name) is not None]
    if args.model != "tiny":
        ignored.append("--model (the requests' model is --served-model)")
    if ignored:
        print(
            f"tether replay: the server's own settings apply; ignored: {', '.join(ignored)}", file=sys.stderr
        )
    show = None if args.quiet else progress_printer(sys.stderr)
    try:
        row = asyncio.run(
            replay_endpoint(
                args.endpoint,
                programs,
                arrivals,
                model=args.served_model,
                api_key=args.api_key,
                label=args.label,
                seed=args.seed,
                hints=args.hints,
                window=args.window or 0.0,
                on_progress=(lambda done, total: show(args.label, done, total)) if show else None,
            )
        )
    except ReplayHTTPError as exc:
        print(f"tether replay: {exc}", file=sys.stderr)
        return 1
    _print_endpoint(args, row, programs)
    return 0


def _endpoint_programs(args: argparse.Namespace):
    from tether.runtime.replay.driver import Arrivals
    from tether.runtime.replay.http import refuse_compiled
    from tether.runtime.replay.runner import measured_window
    from tether.runtime.replay.workload import load_workload

    rejected = [flag for flag, name in _HTTP_REJECTED if getattr(args, name)]
    if rejected:
        raise ValueError(f"{', '.join(rejected)} cannot be used with --endpoint")
    if args.rate is None and args.concurrency is None:
        raise ValueError("give --rate R or --concurrency C")
    programs = load_workload(args.workload)[: args.programs]
    refuse_compiled(programs)
    programs = [p.scaled(args.token_scale, args.time_scale) for p in programs]
    measured_window(len(programs), args.window or 0.0)  # a ValueError names a bad --window
    if args.concurrency is not None:
        return programs, Arrivals(concurrency=args.concurrency)
    return programs, Arrivals.poisson(len(programs), args.rate, args.seed)


def _print_endpoint(args: argparse.Namespace, row: dict, programs: list) -> None:
    from tether.runtime.replay.floor import prefill_floor
    from tether.runtime.replay.report import format_floor, format_table

    floor = prefill_floor(programs, args.block_size)
    print(format_table([row]))
    if row["turns_without_token_ids"]:
        print(
            f"{row['turns_without_token_ids']} of {row['turns']} turns came back without token_ids: replay "
            "appended seeded random tokens, so later prompts are not what the server generated"
        )
    if args.window:
        print(f"averages leave out the first and last {args.window:.0%} of programs by arrival")
    if args.hints == "oracle":
        print(
            "hints: oracle -- the server saw each program's true remaining turns (+true-turns): not a bound"
        )
    print(format_floor(floor))
    if args.json:
        doc = {
            "workload": str(args.workload),
            "settings": _endpoint_settings_doc(args, len(programs), row["served_model"]),
            "prefill_floor": floor.as_dict(),
            "results": [row],
        }
        Path(args.json).write_text(json.dumps(doc, indent=2))


_HTTP_REJECTED = (
    ("--simulate", "simulate"),
    ("--sweep", "sweep"),
    ("--draw", "draw"),
    ("--solo", "solo"),
    ("--seeds", "seeds"),
)
_HTTP_IGNORED = (
    ("--policies", "policies"),
    ("--kv-blocks", "kv_blocks"),
    ("--cpu-kv-blocks", "cpu_kv_blocks"),
    ("--cost-model", "cost_model"),
)


def _endpoint_settings_doc(args: argparse.Namespace, n: int, model: str) -> dict:
    return {
        "endpoint": args.endpoint,
        "served_model": model,
        "label": args.label,
        "programs": n,
        "window": args.window or 0.0,
        "hints": args.hints,
        "seed": args.seed,
        "rate": args.rate,
        "concurrency": args.concurrency,
        "token_scale": args.token_scale,
        "time_scale": args.time_scale,
        "block_size": args.block_size,  # the prefill floor's only
    }


def _cpu_blocks(value: str | None, gpu_blocks: int | None) -> int | None:
    """``--cpu-kv-blocks``: a count, or ``<k>x`` times the GPU KV blocks."""
    if value is None:
        return None
    multiple = value.endswith("x")
    if multiple and gpu_blocks is None:
        raise ValueError(f"--cpu-kv-blocks {value} is a multiple of --kv-blocks: give --kv-blocks")
    try:
        return round(float(value[:-1]) * gpu_blocks) if multiple else int(value)
    except ValueError:
        raise ValueError(f"--cpu-kv-blocks must be a count or a multiple like 4x, got {value!r}") from None


def _settings_doc(args: argparse.Namespace, settings, n: int, seeds: list[int]) -> dict:
    cpu = settings.engine.num_cpu_kv_blocks
    return {
        "programs": n,
        "draw": args.draw,
        "window": settings.window,
        "hints": settings.hints,
        "seeds": seeds,
        "rate": args.rate,
        "concurrency": args.concurrency,
        "policies": list(settings.policies),
        "token_scale": args.token_scale,
        "time_scale": args.time_scale,
        "kv_blocks": args.kv_blocks,
        "cpu_kv_blocks": cpu,
        "cpu_tier_x": cpu / args.kv_blocks if cpu is not None and args.kv_blocks else None,
        "block_size": args.block_size,
        "model": args.model,
        "simulate": args.simulate,
        "cost_model": settings.cost_model.name if settings.cost_model else None,
        "seed": args.seed,
        "max_num_batched_tokens": args.max_num_batched_tokens,
        "turns_prior_exclude": settings.engine.turns_prior_exclude,
    }
