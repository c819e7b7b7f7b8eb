"""``tether bench kernels``: the Triton attention kernels on a CUDA GPU (``triton.testing.do_bench``, median).

- prefill / extend: TFLOP/s of ``paged_attention`` against ``F.scaled_dot_product_attention`` on the same
  (dense, contiguous) K/V; FLOPs count the visible (query, key) pairs: ``4 * D * Hq * pairs``.
- decode: effective GB/s (K and V read once) and its fraction of the measured HBM bandwidth (a large
  device-to-device copy, bytes read + written).
- shared prefix: ``shared_prefix_attention`` against ``paged_attention`` over the concatenated tables for one
  decode step of B sequences on a P-token prefix (each with its own suffix).

The timed calls are the launchers with their plans made beforehand (no argument checks, no device sync).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from itertools import accumulate

import torch


@dataclass(frozen=True)
class KernelBenchConfig:
    dtype: torch.dtype = torch.bfloat16
    num_q_heads: int = 32
    num_kv_heads: int = 8
    head_dim: int = 128
    block_size: int = 16
    prefill: tuple[tuple[int, int, int], ...] = (
        (4, 0, 4096),
        (1, 0, 16384),
        (8, 4096, 512),
    )  # (B, cached, new)
    decode_batch: int = 32
    decode_kv_lens: tuple[int, ...] = (1024, 2048, 4096, 8192, 16384, 32768)
    shared_batches: tuple[int, ...] = (64, 128, 256)
    shared_prefixes: tuple[int, ...] = (1024, 4096, 16384)
    shared_suffix: int = 64
    seed: int = 0
    device: str = "cuda"


@dataclass
class KernelBenchResult:
    gpu: str
    hbm_gb_s: float
    prefill: list[dict] = field(default_factory=list)
    decode: list[dict] = field(default_factory=list)
    shared_prefix: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def bench_ms(fn: Callable[[], object]) -> float:
    import triton.testing

    return float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))


def measure_hbm_gb_s(device: torch.device) -> float:
    """A 2 GiB device-to-device copy, counting bytes read and written."""
    src = torch.empty(2**30 // 2, dtype=torch.float32, device=device).normal_()
    dst = torch.empty_like(src)
    ms = bench_ms(lambda: dst.copy_(src))
    return 2 * src.numel() * src.element_size() / ms / 1e6


class PagedInputs:
    """Random q and a paged cache holding ``lens[s]`` tokens per sequence on permuted pages, optionally all
    starting with ``prefix_len`` shared tokens."""

    def __init__(
        self, cfg: KernelBenchConfig, lens: list[int], q_lens: list[int], prefix_len: int = 0
    ) -> None:
        dev = torch.device(cfg.device)
        g = torch.Generator(device=dev).manual_seed(cfg.seed)
        bs = cfg.block_size
        n_prefix = prefix_len // bs
        own = [math.ceil(n / bs) for n in lens]
        num_blocks = n_prefix + sum(own)
        perm = torch.randperm(num_blocks, device=dev, generator=g).to(torch.int32)
        self.prefix_blocks = perm[:n_prefix]
        width = max(own)
        table = torch.zeros(len(lens), width, dtype=torch.int32, device=dev)
        at = n_prefix
        for s, n in enumerate(own):
            table[s, :n] = perm[at : at + n]
            at += n
        self.block_table = table
        shape = (num_blocks, bs, cfg.num_kv_heads, cfg.head_dim)
        self.k_cache = torch.randn(shape, device=dev, dtype=cfg.dtype, generator=g)
        self.v_cache = torch.randn(shape, device=dev, dtype=cfg.dtype, generator=g)
        self.q = torch.randn(
            sum(q_lens), cfg.num_q_heads, cfg.head_dim, device=dev, dtype=cfg.dtype, generator=g
        )
        self.cu_seqlens_q = torch.tensor([0, *accumulate(q_lens)], dtype=torch.int32, device=dev)
        self.kv_lens = torch.tensor(lens, dtype=torch.int32, device=dev)
        self.prefix_len = prefix_len
        self.max_q_len = max(q_lens)

    def args(self) -> tuple[torch.Tensor, ...]:
        return (self.q, self.k_cache, self.v_cache, self.block_table, self.cu_seqlens_q, self.kv_lens)

    def concatenated(self) -> tuple[torch.Tensor, ...]:
        rows = self.prefix_blocks.view(1, -1).expand(self.block_table.shape[0], -1)
        table = torch.cat([rows, self.block_table], dim=1).contiguous()
        return (self.q, self.k_cache, self.v_cache, table, self.cu_seqlens_q, self.kv_lens + self.prefix_len)


def paged_call(args: tuple[torch.Tensor, ...], max_q_len: int, causal: bool = True) -> Callable[[], object]:
    """``paged_attention`` as its entry point dispatches it, with the plan made once."""
    from tether.kernels.paged import attend, plan_launch

    q, k_cache = args[0], args[1]
    max_kv = args[3].shape[1] * k_cache.shape[1]
    plan = plan_launch(q, k_cache, args[5].shape[0], max_q_len, max_kv, split=max_q_len <= 1)
    scale = 1.0 / math.sqrt(q.shape[-1])
    return lambda: attend(*args, plan, causal=causal, sm_scale=scale)


def bench_prefill(cfg: KernelBenchConfig, batch: int, cached: int, new: int) -> dict:
    import torch.nn.functional as F
    from torch.nn.attention.bias import causal_lower_right

    inputs = PagedInputs(cfg, [cached + new] * batch, [new] * batch)
    pairs = batch * (new * cached + new * (new + 1) // 2)
    flops = 4 * cfg.head_dim * cfg.num_q_heads * pairs
    ms = bench_ms(paged_call(inputs.args(), new))
    group = cfg.num_q_heads // cfg.num_kv_heads
    q = inputs.q.view(batch, new, cfg.num_q_heads, cfg.head_dim).transpose(1, 2)  # (B, Hq, n, D)
    k = torch.randn(batch, cfg.num_kv_heads, cached + new, cfg.head_dim, device=cfg.device, dtype=cfg.dtype)
    k = k.repeat_interleave(group, dim=1)  # (B, Hq, L, D): heads repeated so SDPA takes its flash path
    v = torch.randn_like(k)
    if cached == 0:
        sdpa_ms = bench_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    else:
        mask = causal_lower_right(new, cached + new)
        sdpa_ms = bench_ms(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    return dict(
        batch=batch, cached=cached, new=new, ms=ms, tflops=flops / ms / 1e9,
        sdpa_ms=sdpa_ms, sdpa_tflops=flops / sdpa_ms / 1e9,
    )  # fmt: skip


def bench_decode(cfg: KernelBenchConfig, kv_len: int, hbm_gb_s: float) -> dict:
    from tether.kernels.paged import plan_launch

    b = cfg.decode_batch
    inputs = PagedInputs(cfg, [kv_len] * b, [1] * b)
    nbytes = 2 * b * kv_len * cfg.num_kv_heads * cfg.head_dim * inputs.k_cache.element_size()
    ms = bench_ms(paged_call(inputs.args(), 1))
    plan = plan_launch(
        inputs.q, inputs.k_cache, b, 1, inputs.block_table.shape[1] * cfg.block_size, split=True
    )
    gb_s = nbytes / ms / 1e6
    return dict(
        batch=b, kv_len=kv_len, ms=ms, gb_s=gb_s, hbm_fraction=gb_s / hbm_gb_s, num_splits=plan.num_splits
    )


def bench_shared_prefix(cfg: KernelBenchConfig, batch: int, prefix_len: int) -> dict:
    from tether.kernels.cascade import cascade_attention, prefix_level

    suffix = cfg.shared_suffix
    inputs = PagedInputs(cfg, [suffix + 1] * batch, [1] * batch, prefix_len=prefix_len)
    level = prefix_level(inputs.prefix_blocks, prefix_len, batch, cfg.block_size, inputs.q.device)
    args = inputs.args()

    def cascade() -> object:
        return cascade_attention(args[0], args[1], args[2], [level], *args[3:], max_q_len=1)

    full = inputs.concatenated()
    cascade_ms = bench_ms(cascade)
    paged_ms = bench_ms(paged_call(full, 1))
    (o_c, _), (o_p, _) = cascade(), paged_call(full, 1)()
    err = ((o_c.float() - o_p.float()).norm() / o_p.float().norm()).item()
    return dict(
        batch=batch, prefix_len=prefix_len, suffix_len=suffix + 1, cascade_ms=cascade_ms, paged_ms=paged_ms,
        speedup=paged_ms / cascade_ms, rel_error=err,
    )  # fmt: skip


def run_kernel_bench(cfg: KernelBenchConfig, log: Callable[[str], None] = print) -> KernelBenchResult:
    dev = torch.device(cfg.device)
    result = KernelBenchResult(gpu=torch.cuda.get_device_name(dev), hbm_gb_s=measure_hbm_gb_s(dev))
    log(f"{result.gpu}: measured HBM copy bandwidth {result.hbm_gb_s:.0f} GB/s")
    for batch, cached, new in cfg.prefill:
        result.prefill.append(bench_prefill(cfg, batch, cached, new))
        log(format_row(result.prefill[-1]))
        torch.cuda.empty_cache()
    for kv_len in cfg.decode_kv_lens:
        result.decode.append(bench_decode(cfg, kv_len, result.hbm_gb_s))
        log(format_row(result.decode[-1]))
        torch.cuda.empty_cache()
    for batch in cfg.shared_batches:
        for prefix in cfg.shared_prefixes:
            result.shared_prefix.append(bench_shared_prefix(cfg, batch, prefix))
            log(format_row(result.shared_prefix[-1]))
            torch.cuda.empty_cache()
    return result


def format_row(row: dict) -> str:
    return "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())


def format_result(result: KernelBenchResult) -> str:
    lines = [f"GPU: {result.gpu}; HBM copy bandwidth {result.hbm_gb_s:.0f} GB/s", "", "prefill / extend:"]
    lines.append(
        f"{'batch':>6} {'cached':>7} {'new':>6} {'ms':>8} {'TFLOP/s':>8} {'SDPA ms':>8} {'SDPA TF/s':>9}"
    )
    for r in result.prefill:
        lines.append(
            f"{r['batch']:>6} {r['cached']:>7} {r['new']:>6} {r['ms']:>8.3f} {r['tflops']:>8.1f} "
            f"{r['sdpa_ms']:>8.3f} {r['sdpa_tflops']:>9.1f}"
        )
    lines += ["", "decode:", f"{'batch':>6} {'kv_len':>7} {'ms':>8} {'GB/s':>8} {'of HBM':>7} {'splits':>6}"]
    for r in result.decode:
        lines.append(
            f"{r['batch']:>6} {r['kv_len']:>7} {r['ms']:>8.3f} {r['gb_s']:>8.0f} {r['hbm_fraction']:>7.0%} "
            f"{r['num_splits']:>6}"
        )
    lines += ["", "shared prefix (one decode step):"]
    lines.append(
        f"{'batch':>6} {'prefix':>7} {'cascade ms':>10} {'paged ms':>9} {'speedup':>8} {'rel err':>8}"
    )
    for r in result.shared_prefix:
        lines.append(
            f"{r['batch']:>6} {r['prefix_len']:>7} {r['cascade_ms']:>10.3f} {r['paged_ms']:>9.3f} "
            f"{r['speedup']:>7.1f}x {r['rel_error']:>8.1e}"
        )
    return "\n".join(lines)
