"""``tether bench serve``: a workload replayed through ``tether serve`` against the same replay in process, for
each policy, in one run: the policies' JCT ratio over HTTP, and what the server adds to JCT.

For each policy, in turn: in-process replay (``run_policy``, the real engine, wall-clock time), then a
``tether serve --policy P`` child process with the same engine settings, replayed over HTTP by
``HTTPReplayDriver`` with the same programs and seeded arrivals. The server's overhead is its average JCT over
the in-process one, minus 1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from tether.runtime.bench.process import serve_process
from tether.runtime.engine.config import EngineConfig
from tether.runtime.replay.http import replay_endpoint
from tether.runtime.replay.runner import ReplaySettings, run_policy
from tether.runtime.replay.workload import TraceProgram


@dataclass(frozen=True)
class ServeBenchSettings:
    policies: tuple[str, ...]
    engine: EngineConfig  # num_kv_blocks, block_size, max_num_batched_tokens, model, seed
    rate: float | None
    concurrency: int | None
    seed: int = 0

    def replay(self) -> ReplaySettings:
        return ReplaySettings(self.policies, self.engine, self.rate, self.concurrency, self.seed)

    def serve_args(self, policy: str) -> list[str]:
        e = self.engine
        args = ["--model", e.model, "--policy", policy, "--block-size", str(e.block_size)]
        args += ["--max-num-batched-tokens", str(e.max_num_batched_tokens), "--seed", str(e.seed)]
        if e.num_kv_blocks is not None:
            args += ["--num-kv-blocks", str(e.num_kv_blocks)]
        if e.num_cpu_kv_blocks is not None:
            args += ["--num-cpu-kv-blocks", str(e.num_cpu_kv_blocks)]
        if e.num_threads is not None:
            args += ["--threads", str(e.num_threads)]
        if e.dtype is not None:
            args += ["--dtype", e.dtype]
        if e.enforce_eager is not None:
            args.append("--enforce-eager" if e.enforce_eager else "--compile")
        return args


def run_serve_bench(
    settings: ServeBenchSettings,
    programs: list[TraceProgram],
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    replay = settings.replay()
    arrivals = replay.arrivals(len(programs))
    rows = []
    for policy in settings.policies:

        def progress(label: str) -> Callable[[int, int], None] | None:
            return (lambda done, total: on_progress(label, done, total)) if on_progress else None

        local = run_policy(replay, policy, programs, arrivals, progress(f"{policy} (in process)"))
        with serve_process(*settings.serve_args(policy)) as url:
            http = asyncio.run(
                replay_endpoint(
                    url,
                    programs,
                    arrivals,
                    label=policy,
                    seed=settings.seed,
                    on_progress=progress(f"{policy} (http)"),
                )
            )
        rows.append(
            {
                "policy": policy,
                "in_process": local,
                "http": http,
                "server_overhead": http["avg_jct_s"] / local["avg_jct_s"] - 1.0,
            }
        )
    doc: dict = {"rows": rows}
    by = {r["policy"]: r for r in rows}
    if "vllm" in by and "tether" in by:
        doc["tether_over_vllm_http"] = by["tether"]["http"]["avg_jct_s"] / by["vllm"]["http"]["avg_jct_s"]
        doc["tether_over_vllm_in_process"] = (
            by["tether"]["in_process"]["avg_jct_s"] / by["vllm"]["in_process"]["avg_jct_s"]
        )
    return doc


def format_serve_bench(doc: dict) -> str:
    header = f"{'policy':10s} {'in-process JCT':>15s} {'HTTP JCT':>10s} {'server adds':>12s} {'HTTP cache hits':>16s}"
    lines = [header, "-" * len(header)]
    for r in doc["rows"]:
        hits = r["http"].get("cache_hit_tokens", 0) / max(1, r["http"]["prompt_tokens"])
        lines.append(
            f"{r['policy']:10s} {r['in_process']['avg_jct_s']:14.2f}s {r['http']['avg_jct_s']:9.2f}s "
            f"{r['server_overhead']:+11.1%} {hits:15.1%}"
        )
    if "tether_over_vllm_http" in doc:
        lines.append(
            f"tether / vllm average JCT: {doc['tether_over_vllm_http']:.3f} over HTTP, "
            f"{doc['tether_over_vllm_in_process']:.3f} in process"
        )
    return "\n".join(lines)
