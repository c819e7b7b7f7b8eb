"""Engine replicas on a local Ray cluster, driven over HTTP by ``tether replay --endpoint`` (docs/cluster.md).

    .venv/bin/python bench/ray_cluster.py [--programs 60] [--rate 0.5] [--rounds 2] [--json out/ray_cluster.json]
    .venv/bin/python bench/ray_cluster.py --kill-after 20     # one replica killed mid-run

Each configuration is a fresh ``tether serve --replicas N --router R`` (a local Ray cluster, the ``tiny`` model,
``--num-kv-blocks`` per replica) replayed by ``tether replay --endpoint`` with the same programs and seeded
arrivals. One replica runs at ``--rate``; two replicas at twice the rate, so the load per replica is the same.
The configurations alternate, ``--rounds`` times; the table gives medians. The pin counts come from the
cluster's ``/metrics`` (summed over its replicas, measured over the replay), the cached fraction from the
responses' ``cached_tokens``.

``--kill-after S``: one run of two replicas under ``--router``, and ``S`` seconds into the replay the replica
holding the most programs is killed (``SIGKILL`` to its PID, read from ``GET /replicas``). It checks that every
program finished, that the server answered exactly as many turns as the replay sent (nothing lost, nothing
answered twice), and reports the retries and the lost replica from ``/metrics``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TETHER = [sys.executable, "-m", "tether.cli"]
PORT = 8431


def serve(replicas: int, router: str, args: argparse.Namespace) -> subprocess.Popen:
    cmd = TETHER + [
        "serve", "--replicas", str(replicas), "--router", router, "--model", args.model, "--port", str(PORT),
        "--threads", "1", "--num-kv-blocks", str(args.kv_blocks), "--num-cpu-kv-blocks", str(4 * args.kv_blocks),
        "--trace-dir", str(args.trace_dir),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if len(httpx.get(f"http://127.0.0.1:{PORT}/replicas", timeout=2).json()["data"]) >= replicas:
                return proc
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"tether serve exited with {proc.returncode}: {' '.join(cmd)}")
        time.sleep(1)
    stop(proc)
    raise RuntimeError("the cluster did not come up in 180 s")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def replay(rate: float, args: argparse.Namespace, out: Path) -> subprocess.Popen:
    cmd = TETHER + [
        "replay", "--workload", str(args.workload), "--endpoint", f"http://127.0.0.1:{PORT}/v1",
        "--programs", str(args.programs), "--token-scale", str(args.token_scale), "--time-scale",
        str(args.time_scale), "--rate", str(rate), "--seed", "0", "--quiet", "--json", str(out),
    ]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def measured_run(
    replicas: int, router: str, args: argparse.Namespace, tag: str, kill_after: float | None = None
) -> dict:
    """One fresh cluster replayed at ``args.rate`` per replica; with ``kill_after``, the replica holding the most
    programs is killed that many seconds into the replay."""
    proc = serve(replicas, router, args)
    out = args.out_dir / f"{tag}.json"
    victim = None
    try:
        load0 = os.getloadavg()[0]
        rp = replay(args.rate * replicas, args, out)
        if kill_after is not None:
            time.sleep(kill_after)
            data = httpx.get(f"http://127.0.0.1:{PORT}/replicas", timeout=10).json()["data"]
            victim = max(data, key=lambda r: (r["programs"], r["queue_len"]))
            os.kill(victim["pid"], signal.SIGKILL)
        _, err = rp.communicate()
        if rp.returncode != 0:
            raise RuntimeError(f"replay failed: {err.strip()[-500:]}")
        row = json.loads(out.read_text())["results"][0]
    finally:
        stop(proc)
    row["cached_fraction"] = row.get("cache_hit_tokens", 0) / row["prompt_tokens"]
    row["load_avg_1m"] = (load0 + os.getloadavg()[0]) / 2
    if victim is not None:
        row["killed"] = {k: victim[k] for k in ("replica_id", "pid", "programs")}
        row["lost_turns"] = row["turns"] - row.get("server_completions", 0)
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--workload", type=Path, default=ROOT.parent / "shared/workloads/terminal_bench_agents.jsonl"
    )
    p.add_argument("--programs", type=int, default=60)
    p.add_argument("--rate", type=float, default=0.5, help="programs/s per replica")
    p.add_argument("--token-scale", type=float, default=0.1)
    p.add_argument("--time-scale", type=float, default=0.1)
    p.add_argument("--kv-blocks", type=int, default=600, help="GPU KV blocks per replica")
    p.add_argument("--model", default="tiny")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--routers", default="program,pow2,prefix,session", help="routers run with two replicas")
    p.add_argument("--kill-after", type=float, default=None, help="kill a replica this many seconds in")
    p.add_argument("--kill-router", default="program")
    p.add_argument("--json", type=Path, default=ROOT / "out/ray_cluster.json")
    args = p.parse_args()
    args.out_dir = args.json.parent / "ray_cluster_runs"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    args.trace_dir = args.out_dir / "traces"
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    if args.kill_after is not None:
        row = measured_run(2, args.kill_router, args, f"kill-{args.kill_router}", args.kill_after)
        args.json.write_text(json.dumps({"settings": settings, "killed_run": row}, indent=2))
        print(json.dumps({k: row[k] for k in KILL_KEYS if k in row}, indent=2))
        ok = row["programs"] == args.programs and row["lost_turns"] == 0
        return 0 if ok else 1
    configs = [(1, "program")] + [(2, r) for r in args.routers.split(",")]
    rows: dict[str, list[dict]] = {}
    for k in range(args.rounds):
        for replicas, router in configs:
            name = f"{replicas}x{router}"
            rows.setdefault(name, []).append(measured_run(replicas, router, args, f"{name}-{k}"))
            print(f"round {k}: {name}: {_line(rows[name][-1])}", flush=True)
    table = {
        name: {key: statistics.median(r.get(key, 0) for r in runs) for key in KEYS}
        for name, runs in rows.items()
    }
    args.json.write_text(json.dumps({"settings": settings, "medians": table, "runs": rows}, indent=2))
    for name, med in table.items():
        print(f"{name:>10s}: {_line(med)}")
    return 0


KEYS = ("avg_jct_s", "p90_jct_s", "pin_hit_rate", "cached_fraction", "pins_created", "pins_hit", "turns_moved",
        "load_avg_1m")  # fmt: skip
KILL_KEYS = ("programs", "turns", "server_completions", "lost_turns", "turns_retried", "replicas_lost", "killed",
             "avg_jct_s", "pin_hit_rate", "cached_fraction")  # fmt: skip


def _line(r: dict) -> str:
    return (
        f"avg JCT {r['avg_jct_s']:.2f} s, p90 {r['p90_jct_s']:.2f} s, pin hit rate {r.get('pin_hit_rate', 0):.3f}, "
        f"cached {r['cached_fraction']:.3f}, moved {r.get('turns_moved', 0)}, load {r['load_avg_1m']:.2f}"
    )


if __name__ == "__main__":
    sys.exit(main())
