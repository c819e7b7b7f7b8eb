"""``tether generate``: one generation, printed as text or JSON."""

from __future__ import annotations

import argparse
import json
import sys

from tether.cli.common import add_engine_args, engine_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate text for one or more prompts")
    p.add_argument("--prompt", action="append", required=True, help="prompt text (repeat for a batch)")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--sampling-seed", type=int, default=None)
    p.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    p.add_argument("--ignore-eos", action="store_true")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_engine_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tether.runtime.engine.errors import EngineError, ModelLoadError
    from tether.runtime.engine.llm import LLM
    from tether.runtime.engine.sampling_params import SamplingParams

    try:
        params = SamplingParams(
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            seed=args.sampling_seed,
            stop=tuple(args.stop),
            ignore_eos=args.ignore_eos,
        )
        llm = LLM(args.model, **engine_kwargs(args))
        outputs = llm.generate(args.prompt, params)
    except (EngineError, ModelLoadError, ValueError) as exc:
        print(f"tether generate: {exc}", file=sys.stderr)
        return 2
    if args.json:
        results = [
            {
                "prompt": o.prompt,
                "text": o.outputs[0].text,
                "token_ids": list(o.outputs[0].token_ids),
                "prompt_tokens": len(o.prompt_token_ids),
                "completion_tokens": len(o.outputs[0].token_ids),
                "num_cached_tokens": o.num_cached_tokens,
                "finish_reason": o.outputs[0].finish_reason,
            }
            for o in outputs
        ]
        doc = (
            {"model": args.model, **results[0]}
            if len(results) == 1
            else {"model": args.model, "results": results}
        )
        print(json.dumps(doc))
    else:
        for o in outputs:
            print(o.outputs[0].text)
    return 0
