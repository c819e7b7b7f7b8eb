"""``tether bench engine``."""

from __future__ import annotations

import argparse
import json

from runtime.cli.common import add_engine_args, engine_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks")
    bsub = p.add_subparsers(dest="bench", required=True)
    e = bsub.add_parser("engine", help="prefill / decode throughput and cached-prefix TTFT")
    e.add_argument("--prefill-batch", type=int, default=8)
    e.add_argument("--prefill-len", type=int, default=512)
    e.add_argument("--decode-batches", default="1,8,32")
    e.add_argument("--decode-prompt-len", type=int, default=128)
    e.add_argument("--decode-steps", type=int, default=32)
    e.add_argument("--ttft-prompt-len", type=int, default=1024)
    e.add_argument("--ttft-repeats", type=int, default=3)
    e.add_argument("--json", default=None, help="also write the result to this file")
    add_engine_args(e)
    e.set_defaults(func=run_engine)


def register_calibrate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="fit a step-time cost model to this machine's real engine")
    p.add_argument("--name", default="tiny-cpu")
    p.add_argument(
        "--out", required=True, help="JSON file to write (runtime/sim/cost_models/NAME.json to ship it)"
    )
    add_engine_args(p)
    p.set_defaults(func=run_calibrate)


def run_calibrate(args: argparse.Namespace) -> int:
    from runtime.engine.config import EngineConfig
    from runtime.sim.calibrate import calibrate

    model, median_error = calibrate(
        EngineConfig(model=args.model, **engine_kwargs(args)), args.name, args.seed
    )
    model.to_json(args.out)
    print(f"{model}\nmedian relative error on the measured steps: {median_error:.1%}; written to {args.out}")
    return 0


def run_engine(args: argparse.Namespace) -> int:
    from runtime.bench.engine import format_result, run_engine_bench
    from runtime.engine.config import EngineConfig

    result = run_engine_bench(
        EngineConfig(model=args.model, **engine_kwargs(args)),
        prefill_batch=args.prefill_batch,
        prefill_len=args.prefill_len,
        decode_batches=tuple(int(b) for b in args.decode_batches.split(",")),
        decode_prompt_len=args.decode_prompt_len,
        decode_steps=args.decode_steps,
        ttft_prompt_len=args.ttft_prompt_len,
        ttft_repeats=args.ttft_repeats,
    )
    print(format_result(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result.as_dict(), f, indent=2)
    return 0
