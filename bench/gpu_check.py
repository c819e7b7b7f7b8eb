"""Every GPU figure in one run: ``make gpu-check`` (CUDA, under 8 minutes) or ``make gpu-check DRY=1`` (the same
steps in a tiny form on CPU, to check the plumbing).

Each step runs as its own process with a time limit and writes ``out/gpu/<step>.json``; a step that fails is
recorded as failed with the tail of its output and the next one runs. ``out/gpu/summary.json`` lists every step.

    python bench/gpu_check.py                 # on a CUDA machine
    python bench/gpu_check.py --dry-run       # on CPU: tiny model, tiny grid, Triton in its interpreter
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TETHER = [sys.executable, "-m", "tether.cli"]


@dataclass(frozen=True)
class Step:
    name: str
    argv: list[str]
    timeout_s: int
    env: dict[str, str] = field(default_factory=dict)
    skip: str | None = None
    """Why the step does not run in this mode (recorded as skipped)."""


def parity_argv(device: str, dtype: str, out: Path) -> list[str]:
    return [sys.executable, str(ROOT / "bench" / "gpu_parity.py"), "--device", device, "--dtype", dtype,
            "--json", str(out)]  # fmt: skip


def gpu_steps(out: Path) -> list[Step]:
    """The limits sum to 470 s: the whole check stays under 8 minutes even if every step runs out of time."""
    llama = ["--model", "llama3-8b-random", "--device", "cuda", "--dtype", "bfloat16", "--num-kv-blocks", "4096"]
    return [
        Step("kernels_grid", [sys.executable, "-m", "tether.runtime.engine.attention.self_check", "--device",
             "cuda", "--dtypes", "float16,bfloat16", "--json", str(out / "kernels_grid.json")], 70),  # fmt: skip
        Step("bench_kernels", TETHER + ["bench", "kernels", "--dtype", "bfloat16", "--shared-batches", "128",
             "--shared-prefixes", "4096", "--json", str(out / "bench_kernels.json")], 110),  # fmt: skip
        Step("bench_engine_llama3_8b_bf16", TETHER + ["bench", "engine", *llama, "--json",
             str(out / "bench_engine_llama3_8b_bf16.json")], 100),  # fmt: skip
        Step("bench_engine_smollm2", TETHER + ["bench", "engine", "--model", "smollm2", "--device", "cuda", "--dtype",
             "bfloat16", "--repeats", "2", "--json", str(out / "bench_engine_smollm2.json")], 70),  # fmt: skip
        Step("parity_smollm2", parity_argv("cuda", "float32", out / "parity_smollm2.json"), 40),
        Step("calibrate", TETHER + ["calibrate", *llama, "--name", "llama3-8b-bf16-measured", "--out",
             str(out / "calibrate.json")], 80),  # fmt: skip
    ]


def dry_steps(out: Path) -> list[Step]:
    tiny_bench = ["--prefill-batch", "2", "--prefill-len", "32", "--decode-batches", "1,2", "--decode-prompt-len",
                  "16", "--decode-steps", "4", "--ttft-prompt-len", "64", "--ttft-repeats", "1"]  # fmt: skip
    tiny = ["--model", "tiny", "--device", "cpu", "--dtype", "float32", "--num-kv-blocks", "64"]
    return [
        Step("kernels_grid", [sys.executable, "-m", "tether.runtime.engine.attention.self_check", "--device", "cpu",
             "--dtypes", "float32,float16", "--tiny", "--json", str(out / "kernels_grid.json")], 120,
             env={"TRITON_INTERPRET": "1"}),  # fmt: skip
        Step("bench_kernels", [], 1, skip="needs CUDA: timings under the Triton interpreter mean nothing"),
        Step("bench_engine_llama3_8b_bf16", TETHER + ["bench", "engine", *tiny, *tiny_bench, "--json",
             str(out / "bench_engine_llama3_8b_bf16.json")], 120),  # fmt: skip
        Step("bench_engine_smollm2", TETHER + ["bench", "engine", *tiny, *tiny_bench, "--json",
             str(out / "bench_engine_smollm2.json")], 120),  # fmt: skip
        Step("parity_smollm2", parity_argv("cpu", "float32", out / "parity_smollm2.json") + ["--model", "tiny"], 120),
        Step("calibrate", [sys.executable, str(ROOT / "bench" / "gpu_parity.py"), "--calibrate-dry-run", "--json",
             str(out / "calibrate.json")], 120),  # fmt: skip
    ]


def run_step(step: Step, out: Path) -> dict:
    record: dict = {"step": step.name, "json": str(out / f"{step.name}.json"), "argv": step.argv}
    if step.skip:
        record.update(status="skipped", reason=step.skip, seconds=0.0)
        (out / f"{step.name}.json").write_text(json.dumps({"skipped": step.skip}, indent=2))
        return record
    env = {**os.environ, **step.env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
           os.environ.get("PYTHONPATH")]))}  # fmt: skip
    start = time.perf_counter()
    try:
        proc = subprocess.run(step.argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=step.timeout_s)
        rc, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, output = None, f"timed out after {step.timeout_s} s\n{exc.stdout or ''}{exc.stderr or ''}"
    record["seconds"] = round(time.perf_counter() - start, 2)
    record["output_tail"] = output[-3000:] if isinstance(output, str) else ""
    if rc == 0 and (out / f"{step.name}.json").exists():
        record["status"] = "passed"
    else:
        record.update(status="failed", returncode=rc, error=record["output_tail"][-800:])
        if not (out / f"{step.name}.json").exists():
            (out / f"{step.name}.json").write_text(json.dumps({"failed": record["error"], "returncode": rc}))
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="every step in a tiny form on CPU")
    ap.add_argument("--out", default="out/gpu")
    ap.add_argument("--only", default=None, help="comma-separated step names")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    steps = dry_steps(out) if args.dry_run else gpu_steps(out)
    if args.only:
        steps = [s for s in steps if s.name in args.only.split(",")]
    started = time.perf_counter()
    records = []
    for step in steps:
        print(f"== {step.name}", flush=True)
        record = run_step(step, out)
        records.append(record)
        print(f"   {record['status']} in {record['seconds']} s -> {record['json']}"
              + (f"\n   {record.get('reason') or record.get('error', '').strip().splitlines()[-1:]}"
                 if record["status"] != "passed" else ""), flush=True)  # fmt: skip
    summary = {
        "mode": "dry-run (CPU)" if args.dry_run else "cuda",
        "host": platform.node(),
        "python": sys.version.split()[0],
        "seconds": round(time.perf_counter() - started, 2),
        "passed": sum(r["status"] == "passed" for r in records),
        "failed": sum(r["status"] == "failed" for r in records),
        "skipped": sum(r["status"] == "skipped" for r in records),
        "steps": records,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"summary: {summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped "
          f"in {summary['seconds']} s -> {out / 'summary.json'}")  # fmt: skip
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
