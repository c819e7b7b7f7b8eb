"""``tether bench engine``, ``tether bench kernels``, ``tether bench agents`` and ``tether bench serve``."""

from __future__ import annotations

import argparse
import json
import os
import sys

from tether.cli.common import add_engine_args, engine_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks")
    bsub = p.add_subparsers(dest="bench", required=True)
    _register_engine(bsub)
    _register_kernels(bsub)
    _register_agents(bsub)
    _register_serve(bsub)
    _register_router(bsub)


def _register_engine(bsub: argparse._SubParsersAction) -> None:
    """``tether bench engine``: the engine's throughput, against transformers or vLLM."""
    e = bsub.add_parser("engine", help="prefill / decode throughput and cached-prefix TTFT")
    e.add_argument("--prefill-batch", type=int, default=8)
    e.add_argument("--prefill-len", type=int, default=512)
    e.add_argument("--decode-batches", default="1,8,32")
    e.add_argument("--decode-prompt-len", type=int, default=128)
    e.add_argument("--decode-steps", type=int, default=32)
    e.add_argument("--ttft-prompt-len", type=int, default=1024)
    e.add_argument("--ttft-repeats", type=int, default=3)
    e.add_argument("--json", default=None, help="also write the result to this file")
    e.add_argument(
        "--against",
        default="transformers",
        choices=["transformers", "vllm", "none"],
        help="the side-by-side peer: transformers generate in this process (every model but presets), or real "
        "vLLM, each system in its own process, alternating (needs `make vllm-peer`; docs/benchmarks.md)",
    )
    e.add_argument("--no-transformers", action="store_true", help="the same as --against none")
    e.add_argument(
        "--vllm-python", default=".venv-vllm/bin/python", help="the interpreter of vLLM's environment"
    )
    e.add_argument("--repeats", type=int, default=3, help="interleaved rounds of the transformers comparison")
    add_engine_args(e)
    e.set_defaults(func=run_engine)


def _register_kernels(bsub: argparse._SubParsersAction) -> None:
    """``tether bench kernels``: the Triton attention kernels' shapes."""
    k = bsub.add_parser(
        "kernels", help="Triton attention kernels on a CUDA GPU (prefill, decode, shared prefix)"
    )
    k.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16"])
    k.add_argument("--heads", default="32,8", help="query heads,kv heads (default: Llama-3-8B's)")
    k.add_argument("--head-dim", type=int, default=128)
    k.add_argument("--block-size", type=int, default=16)
    k.add_argument(
        "--prefill", default="4x0+4096,1x0+16384,8x4096+512", help="BATCHxCACHED+NEW,... (prefill / extend)"
    )
    k.add_argument("--decode-batch", type=int, default=32)
    k.add_argument("--decode-kv-lens", default="1024,2048,4096,8192,16384,32768")
    k.add_argument("--shared-batches", default="64,128,256")
    k.add_argument("--shared-prefixes", default="1024,4096,16384")
    k.add_argument(
        "--shared-suffix", type=int, default=64, help="each sequence's own tokens after the prefix"
    )
    k.add_argument("--json", default=None, help="also write the result to this file")
    k.set_defaults(func=run_kernels)


def _register_agents(bsub: argparse._SubParsersAction) -> None:
    """``tether bench agents``: the question set, the agents' limits and the trace."""
    a = bsub.add_parser(
        "agents",
        help="the planner vs the ReAct baseline on the agent question set (latency, tokens, accuracy)",
    )
    a.add_argument("--ks", default="2,3,4,5,6", help="lookups per question (2..6), comma-separated")
    a.add_argument("--questions", type=int, default=5, help="questions per k")
    a.add_argument("--question-seed", type=int, default=0, help="seed of the questions and tool latencies")
    a.add_argument(
        "--latency",
        default="traces",
        choices=["traces", "realistic", "none"],
        help="tool latency: drawn from the shared traces' measured durations, lognormal, or none",
    )
    a.add_argument("--modes", default="free", help="free, forced (gold-forced decoding) or free,forced")
    a.add_argument("--forced", action="store_true", help="both modes, side by side (--modes free,forced)")
    a.add_argument("--max-steps", type=int, default=8, help="ReAct: LLM calls per question at most")
    a.add_argument("--max-replans", type=int, default=2, help="planner: replans at most")
    a.add_argument("--no-warmup", action="store_true", help="skip the uncounted warm-up question per agent")
    a.add_argument(
        "--trace",
        default=None,
        help="JSONL trace file (default: a recorded run under --trace-dir; docs/tracing.md)",
    )
    a.add_argument("--trace-dir", default=None, help="where runs are recorded (default: ./.tether/runs)")
    a.add_argument("--json", default=None, help="also write every sample and the summary to this file")
    add_engine_args(a)
    a.set_defaults(func=run_agents, model="smollm2")


def _register_serve(bsub: argparse._SubParsersAction) -> None:
    """``tether bench serve``: the workload, its arrivals and the peer server."""
    s = bsub.add_parser(
        "serve",
        help="a workload replayed through `tether serve` and in process, per policy: JCT ratio and server overhead",
    )
    s.add_argument("--workload", required=True, help="a JSONL trace (../shared/workloads/*.jsonl)")
    s.add_argument("--programs", type=int, default=None, help="the first N programs")
    s.add_argument("--policies", default="vllm,tether")
    s.add_argument("--token-scale", type=float, default=1.0, help="multiply token counts (say so in figures)")
    s.add_argument("--time-scale", type=float, default=1.0, help="multiply tool seconds")
    load = s.add_mutually_exclusive_group(required=True)
    load.add_argument("--rate", type=float, default=None, help="Poisson arrivals, programs per second")
    load.add_argument("--concurrency", type=int, default=None, help="closed loop: N programs at a time")
    s.add_argument("--json", default=None, help="also write the result to this file")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument(
        "--against",
        choices=["none", "vllm"],
        default="none",
        help="vllm: real vLLM's OpenAI server against `tether serve --policy P` for each of --policies, over "
        "HTTP only, alternating runs (needs `make vllm-peer`; tether/runtime/bench/serve_peer.py)",
    )
    s.add_argument("--vllm-python", default=".venv-vllm/bin/python", help="the interpreter of vLLM's environment")
    s.add_argument("--repeats", type=int, default=3, help="--against vllm: rounds (each runs every server once)")
    add_engine_args(s)
    s.set_defaults(func=run_serve)


def _register_router(bsub: argparse._SubParsersAction) -> None:
    r = bsub.add_parser("router", help="a router's decision time at cluster scale (tether/runtime/bench/router.py)")
    r.add_argument("--routers", default="program,pow2,prefix,session", help="comma-separated router names")
    r.add_argument("--replicas", type=int, default=64)
    r.add_argument("--programs", type=int, default=10_000, help="live programs the routers hold state for")
    r.add_argument("--requests", type=int, default=20_000, help="turns timed")
    r.add_argument("--prompt-tokens", type=int, default=2048)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--json", help="write the figures here")
    r.set_defaults(func=run_router)


def run_router(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from tether.runtime.bench.router import time_router

    rows = []
    from tether.runtime.cluster.routers import parse_routers

    try:
        names = parse_routers(args.routers)
    except ValueError as exc:
        print(f"tether bench router: {exc}", file=sys.stderr)
        return 2
    for name in names:
        t = time_router(name, args.replicas, args.programs, args.requests, args.prompt_tokens, args.seed)
        rows.append(asdict(t))
        print(f"{t.router:<8} {t.replicas} replicas, {t.programs} programs: median {t.median_us:8.1f} us, "
              f"p99 {t.p99_us:8.1f} us per decision ({t.requests} turns)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"routers": rows}, f, indent=1)
    return 0


def register_calibrate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="fit a step-time cost model to this machine's real engine")
    p.add_argument("--name", default="tiny-cpu")
    p.add_argument(
        "--out", required=True, help="JSON file to write (tether/runtime/costs/cost_models/NAME.json to ship it)"
    )
    add_engine_args(p)
    p.set_defaults(func=run_calibrate)


def run_agents(args: argparse.Namespace) -> int:
    import asyncio

    from tether.agents.bench import build_agents, format_table, run_agents_bench
    from tether.agents.forced import install_forced

    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    modes = ("free", "forced") if args.forced else modes

    async def main() -> int:
        agents, rt, notes = await build_agents(
            args.model,
            max_steps=args.max_steps,
            max_replans=args.max_replans,
            trace=args.trace,
            trace_dir=args.trace_dir,
            **engine_kwargs(args),
        )
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        forced = install_forced(rt) if "forced" in modes else None
        try:
            result = await run_agents_bench(
                agents,
                ks=_ints(args.ks),
                n=args.questions,
                seed=args.question_seed,
                latency=args.latency,
                warmup=not args.no_warmup,
                log=lambda line: print(line, file=sys.stderr, flush=True),
                modes=modes,
                forced=forced,
            )
        finally:
            for agent in agents.values():
                await agent.close()
            await rt.close()
        result.notes.extend(notes)
        print(format_table(result))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result.as_dict(), f, indent=2)
        return 0

    return asyncio.run(main())


def run_serve(args: argparse.Namespace) -> int:
    from tether.runtime.bench.serve import ServeBenchSettings, format_serve_bench, run_serve_bench
    from tether.runtime.engine.config import EngineConfig
    from tether.runtime.policies import get_policy
    from tether.runtime.replay.report import progress_printer
    from tether.runtime.replay.workload import WorkloadError, load_workload

    try:
        programs = load_workload(args.workload)[: args.programs]
        policies = tuple(p.strip() for p in args.policies.split(",") if p.strip())
        for policy in policies:
            get_policy(policy)
        engine = EngineConfig(model=args.model, **engine_kwargs(args))
    except (WorkloadError, ValueError) as exc:
        print(f"tether bench serve: {exc}", file=sys.stderr)
        return 2
    programs = [p.scaled(args.token_scale, args.time_scale) for p in programs]
    if args.against == "vllm":
        return _serve_against_vllm(args, policies, programs)
    settings = ServeBenchSettings(policies, engine, args.rate, args.concurrency, args.seed)
    doc = run_serve_bench(settings, programs, None if args.quiet else progress_printer(sys.stderr))
    doc["settings"] = _serve_settings(
        args, len(programs), num_kv_blocks=args.num_kv_blocks, num_cpu_kv_blocks=args.num_cpu_kv_blocks
    )
    return _report(format_serve_bench(doc), doc, args.json)


def _vllm_peer_checkpoint(args: argparse.Namespace, what: str) -> str | None:
    """The checkpoint folder both systems load, or ``None`` after saying on stderr why vLLM cannot run."""
    from tether.runtime.engine.errors import ModelLoadError
    from tether.runtime.engine.models.presets import PRESETS
    from tether.runtime.engine.models.sources import checkpoint_dir

    if args.model in PRESETS:
        print(f"{what}: {args.model!r} is a preset vLLM cannot load", file=sys.stderr)
        return None
    if not os.path.exists(args.vllm_python):
        print(f"{what}: no {args.vllm_python} (run `make vllm-peer`)", file=sys.stderr)
        return None
    try:
        return str(checkpoint_dir(args.model))
    except ModelLoadError as exc:
        print(f"{what}: {exc}", file=sys.stderr)
        return None


def _serve_settings(args: argparse.Namespace, programs: int, **extra) -> dict:
    """What a ``tether bench serve`` result records of its command."""
    keys = ("workload", "token_scale", "time_scale", "rate", "concurrency", "model", "seed")
    return {"programs": programs, **{k: getattr(args, k) for k in keys}, **extra}


def _report(text: str, doc: dict, json_path: str | None) -> int:
    print(text)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(doc, f, indent=2)
    return 0


def _serve_against_vllm(args: argparse.Namespace, policies: tuple[str, ...], programs: list) -> int:
    from tether.runtime.bench.serve_peer import ServePeerSettings, format_serve_peer, run_serve_peer
    from tether.runtime.replay.report import progress_printer

    what = "tether bench serve --against vllm"
    for flag, value in (("--num-kv-blocks", args.num_kv_blocks), ("--num-cpu-kv-blocks", args.num_cpu_kv_blocks)):
        if value is not None:
            print(f"{what}: {flag} is not used: both servers get 1 GiB of KV memory", file=sys.stderr)
            return 2
    checkpoint = _vllm_peer_checkpoint(args, what)
    if checkpoint is None:
        return 2
    settings = ServePeerSettings(
        model=args.model,
        checkpoint=checkpoint,
        policies=policies,
        vllm_python=os.path.abspath(args.vllm_python),
        dtype=args.dtype or "float32",
        threads=engine_kwargs(args)["num_threads"] or 1,
        repeats=args.repeats,
        rate=args.rate,
        concurrency=args.concurrency,
        seed=args.seed,
        block_size=args.block_size,
        max_num_batched_tokens=args.max_num_batched_tokens,
        enforce_eager=engine_kwargs(args)["enforce_eager"],
    )
    doc = run_serve_peer(settings, programs, None if args.quiet else progress_printer(sys.stderr))
    doc["settings"] = _serve_settings(
        args, len(programs), dtype=settings.dtype, threads=settings.threads, repeats=args.repeats
    )
    return _report(format_serve_peer(doc), doc, args.json)


def run_calibrate(args: argparse.Namespace) -> int:
    from tether.runtime.engine.config import EngineConfig
    from tether.runtime.sim.calibrate import calibrate

    model, median_error = calibrate(
        EngineConfig(model=args.model, **engine_kwargs(args)), args.name, args.seed
    )
    model.to_json(args.out)
    print(f"{model}\nmedian relative error on the measured steps: {median_error:.1%}; written to {args.out}")
    return 0


def run_engine_against_vllm(args: argparse.Namespace) -> int:
    from transformers import AutoTokenizer

    from tether.runtime.bench.peer import PARITY_TEXTS, PeerError, format_peer, run_peer

    checkpoint = _vllm_peer_checkpoint(args, "tether bench engine --against vllm")
    if checkpoint is None:
        return 2
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    kwargs = engine_kwargs(args)
    try:
        result = run_peer(
            checkpoint,
            dtype=args.dtype or "float32",
            threads=kwargs["num_threads"] or 1,
            vllm_python=os.path.abspath(args.vllm_python),
            tether_python=sys.executable,
            vocab_size=len(tokenizer),
            parity_prompts=[tokenizer.encode(text) for text in PARITY_TEXTS],
            repeats=args.repeats,
            decode_batches=tuple(int(b) for b in args.decode_batches.split(",")),
            prompt_len=args.decode_prompt_len,
            decode_tokens=args.decode_steps,
            prefill_len=args.prefill_len,
            tether_enforce_eager=kwargs["enforce_eager"],
        )
    except PeerError as exc:
        print(f"tether bench engine --against vllm: {exc}", file=sys.stderr)
        return 1
    print(format_peer(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"versus_vllm": result.as_dict()}, f, indent=2)
    return 0


def run_engine(args: argparse.Namespace) -> int:
    if args.against == "vllm":
        return run_engine_against_vllm(args)
    from tether.runtime.bench.engine import format_result, run_engine_bench
    from tether.runtime.engine.builder import build_engine
    from tether.runtime.engine.config import EngineConfig
    from tether.runtime.engine.models.presets import PRESETS

    engine = build_engine(EngineConfig(model=args.model, **engine_kwargs(args)))
    result = run_engine_bench(
        engine,
        prefill_batch=args.prefill_batch,
        prefill_len=args.prefill_len,
        decode_batches=tuple(int(b) for b in args.decode_batches.split(",")),
        decode_prompt_len=args.decode_prompt_len,
        decode_steps=args.decode_steps,
        ttft_prompt_len=args.ttft_prompt_len,
        ttft_repeats=args.ttft_repeats,
    )
    print(format_result(result))
    out = result.as_dict()
    if args.model not in PRESETS and args.against == "transformers" and not args.no_transformers:
        from tether.runtime.bench.versus import format_versus, run_versus

        versus = run_versus(engine, repeats=args.repeats)
        print(format_versus(versus))
        out["versus_transformers"] = versus.as_dict()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


def run_kernels(args: argparse.Namespace) -> int:
    import torch

    if not torch.cuda.is_available():
        print("tether bench kernels needs a CUDA GPU (the Triton kernels are compiled for it); none is visible "
              "here. On CPU the kernels only run in the Triton interpreter, which says nothing about speed.",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        import triton  # noqa: F401
    except ImportError:
        print("tether bench kernels needs triton (pip install triton)", file=sys.stderr)
        return 2
    from tether.kernels.bench import KernelBenchConfig, format_result, run_kernel_bench

    hq, hkv = (int(x) for x in args.heads.split(","))
    prefill = []
    for item in args.prefill.split(","):
        batch, rest = item.split("x")
        cached, new = rest.split("+")
        prefill.append((int(batch), int(cached), int(new)))
    cfg = KernelBenchConfig(
        dtype=getattr(torch, args.dtype),
        num_q_heads=hq,
        num_kv_heads=hkv,
        head_dim=args.head_dim,
        block_size=args.block_size,
        prefill=tuple(prefill),
        decode_batch=args.decode_batch,
        decode_kv_lens=_ints(args.decode_kv_lens),
        shared_batches=_ints(args.shared_batches),
        shared_prefixes=_ints(args.shared_prefixes),
        shared_suffix=args.shared_suffix,
    )
    result = run_kernel_bench(cfg)
    print(format_result(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result.as_dict(), f, indent=2)
    return 0


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x)
