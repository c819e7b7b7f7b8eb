"""A one-time check that the Triton attention backend agrees with the torch backend on this device.

``auto`` picks Triton only on a device where this check has passed. The result is cached per device in
``$TETHER_HOME/attention_self_check.json`` under a key of device name + torch and triton versions, so the check
runs once per machine and again after an upgrade. ``python -m tether.runtime.engine.attention.self_check``
runs a grid of cases and prints (or writes, ``--json``) each case's error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from tether.runtime.engine.attention.base import AttentionMetadata

log = logging.getLogger(__name__)

TOLERANCE = {torch.float32: 2e-4, torch.float16: 2e-2, torch.bfloat16: 6e-2}
"""Largest absolute difference allowed against the torch backend run in float32 on the same inputs."""


@dataclass(frozen=True)
class CheckCase:
    dtype: torch.dtype
    num_q_heads: int = 4
    num_kv_heads: int = 2
    head_dim: int = 64
    block_size: int = 16


@dataclass(frozen=True)
class CheckResult:
    case: str
    passed: bool
    max_abs_error: float | None
    tolerance: float
    error: str | None = None


def device_key(device: torch.device) -> str:
    """Device name + torch + triton versions: a new driver stack or GPU checks again."""
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = "none"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    return f"{name}|torch {torch.__version__}|triton {triton_version}"


def cache_path() -> Path:
    from tether.runtime.engine.models.sources import tether_home

    return tether_home() / "attention_self_check.json"


def _batch(case: CheckCase, device: torch.device, generator: torch.Generator):
    """Six sequences: decodes and extends mixed, five on one shared 2-page prefix (the cascade path) and
    interleaved with one that shares nothing, pages shuffled."""
    bs, d = case.block_size, case.head_dim
    steps = [(2 * bs + 3, 1), (2 * bs + 5, 4), (0, 7), (2 * bs + 1, 1), (3 * bs, 2), (2 * bs + 9, 1)]
    shares = [True, True, False, True, True, True]
    pages_needed = sum((c + n + bs - 1) // bs for c, n in steps) + 2
    perm = torch.randperm(pages_needed, generator=generator).tolist()
    shared = [perm.pop(), perm.pop()]
    tables, slots, q_lens, kv_lens = [], [], [], []
    for (cached, new), share in zip(steps, shares, strict=True):
        own = (cached + new + bs - 1) // bs - (2 if share else 0)
        table = (shared if share else []) + [perm.pop() for _ in range(own)]
        tables.append(table)
        slots += [table[p // bs] * bs + p % bs for p in range(cached, cached + new)]
        q_lens.append(new)
        kv_lens.append(cached + new)
    t = sum(q_lens)
    k_cache = torch.randn(pages_needed, bs, case.num_kv_heads, d, generator=generator)
    v_cache = torch.randn(pages_needed, bs, case.num_kv_heads, d, generator=generator)
    q, k, v = (torch.randn(t, h, d, generator=generator) for h in (case.num_q_heads,) + (case.num_kv_heads,) * 2)
    width = max(map(len, tables))
    meta = AttentionMetadata(
        slot_mapping=torch.tensor(slots, device=device),
        block_table=torch.tensor([tb + [0] * (width - len(tb)) for tb in tables], dtype=torch.int32, device=device),
        cu_seqlens_q=torch.tensor([0] + torch.tensor(q_lens).cumsum(0).tolist(), dtype=torch.int32, device=device),
        kv_lens=torch.tensor(kv_lens, dtype=torch.int32, device=device),
        max_q_len=max(q_lens),
    )
    return (q, k, v, k_cache, v_cache), meta


def check_case(case: CheckCase, device: torch.device, seed: int = 0) -> CheckResult:
    """The Triton backend in ``case.dtype`` against the torch backend in float32 on the same inputs."""
    from tether.runtime.engine.attention.torch_backend import TorchAttentionBackend

    name = (
        f"{str(case.dtype).removeprefix('torch.')} hq={case.num_q_heads} hkv={case.num_kv_heads} "
        f"d={case.head_dim} bs={case.block_size}"
    )
    tol = TOLERANCE[case.dtype]
    try:
        from tether.runtime.engine.attention.triton_backend import TritonAttentionBackend

        tensors, meta = _batch(case, device, torch.Generator().manual_seed(seed))
        q, k, v, kc, vc = (x.to(device=device, dtype=case.dtype) for x in tensors)
        out = TritonAttentionBackend().forward(q, k, v, kc, vc, meta)
        q32, k32, v32, kc32, vc32 = (x.to(device=device, dtype=torch.float32) for x in tensors)
        expected = TorchAttentionBackend().forward(q32, k32, v32, kc32, vc32, meta)
        err = (out.float() - expected).abs().max().item()
        cache_err = (kc.float() - kc32.to(case.dtype).float()).abs().max().item()
        passed = err <= tol and cache_err == 0.0
        return CheckResult(name, passed, err, tol, None if passed else f"error {err:.3g}, cache {cache_err:.3g}")
    except Exception as exc:  # a compile or launch failure is a failed check, not a crash
        return CheckResult(name, False, None, tol, f"{type(exc).__name__}: {exc}")


def run_self_check(device: torch.device) -> CheckResult:
    """The gate's check: one float16 case (bfloat16 where float16 is not the model dtype is covered by the
    grid in ``make gpu-check``)."""
    return check_case(CheckCase(dtype=torch.float16), device)


def triton_self_check_passed(device: torch.device, check=run_self_check, path: Path | None = None) -> bool:
    """Whether the Triton backend passed its self-check on ``device``: cached per device key, run once."""
    path = path or cache_path()
    key = device_key(device)
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if key not in cache:
        result = check(device)
        cache[key] = asdict(result)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(cache, indent=2))
        except OSError as exc:
            log.warning("could not cache the attention self-check in %s: %s", path, exc)
    entry = cache[key]
    if not entry.get("passed"):
        log.warning(
            "attention backend auto: the Triton self-check failed on %s (%s); using torch (cached in %s)",
            key, entry.get("error"), path,
        )  # fmt: skip
    return bool(entry.get("passed"))


def grid(dtypes: list[torch.dtype], tiny: bool) -> list[CheckCase]:
    shapes = [(4, 4, 16, 4), (4, 1, 16, 4)] if tiny else [
        (32, 8, 128, 16), (32, 32, 128, 16), (8, 1, 64, 16), (16, 2, 128, 32), (28, 4, 128, 16), (9, 3, 64, 16),
    ]  # fmt: skip
    return [CheckCase(dt, hq, hkv, d, bs) for dt in dtypes for hq, hkv, d, bs in shapes]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Triton attention against the torch backend, case by case")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtypes", default="float16,bfloat16")
    ap.add_argument("--tiny", action="store_true", help="two small shapes (the CPU interpreter's dry run)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    cases = grid([getattr(torch, d) for d in args.dtypes.split(",")], args.tiny)
    results = [check_case(c, device) for c in cases]
    for r in results:
        err = "-" if r.max_abs_error is None else f"{r.max_abs_error:.3g}"
        print(f"{'ok  ' if r.passed else 'FAIL'} {r.case:40s} max|err| {err} (tol {r.tolerance}) {r.error or ''}")
    doc = {
        "device": device_key(device),
        "triton_interpret": os.environ.get("TRITON_INTERPRET") == "1",
        "passed": all(r.passed for r in results),
        "cases": [asdict(r) for r in results],
    }
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2))
    return 0 if doc["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
