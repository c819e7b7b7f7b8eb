"""The terminal side of ``tether replay``: a progress bar while it runs, a table with ratios against vllm."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from tether.runtime.replay.floor import PrefillFloor


def progress_printer(stream: TextIO) -> Callable[[str, int, int], None]:
    """``show(label, done, total)``: one tqdm bar per label on ``stream`` (programs done, their rate, the time
    left), closed when ``done`` reaches ``total``; a label seen again (the next seed) gets a new bar."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def show(label: str, done: int, total: int) -> None:
        bar = bars.get(label)
        if bar is None:
            bar = bars[label] = tqdm(total=total, desc=label, unit="program", file=stream, dynamic_ncols=True)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
            del bars[label]

    return show


def format_table(results: list[dict], solo_avg_jct_s: float | None = None) -> str:
    base = next((r for r in results if r["policy"] == "vllm"), None)
    width = max([16] + [len(r.get("label", r["policy"])) for r in results])
    header = (
        f"{'policy':{width}s} {'avg JCT':>9s} {'x vllm':>7s} {'p50':>8s} {'p90':>8s} {'makespan':>9s} "
        f"{'prog/min':>8s} {'prefill/prompt':>14s} {'pins c/h/e/d':>17s} {'offload':>8s} {'leak':>5s}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        ratio = f"{r['avg_jct_s'] / base['avg_jct_s']:.3f}" if base else "-"
        pin_keys = ("pins_created", "pins_hit", "pins_expired", "pins_dropped")
        pins = "/".join(str(r[k]) for k in pin_keys) if all(k in r for k in pin_keys) else "-"
        lines.append(
            f"{r.get('label', r['policy']):{width}s} {r['avg_jct_s']:9.2f} {ratio:>7s} "
            f"{r['p50_jct_s']:8.2f} {r['p90_jct_s']:8.2f} "
            f"{r['makespan_s']:9.1f} {r['throughput_programs_per_min']:8.2f} "
            f"{_prefill_ratio(r):>14s} {pins:>17s} "
            f"{r.get('offloaded_blocks', '-'):>8} {r.get('kv_leaked_blocks', '-'):>5}"
        )
    if solo_avg_jct_s is not None:
        lines.append(f"{'solo (bound)':{width}s} {solo_avg_jct_s:9.2f}")
    return "\n".join(lines)


def format_cluster(results: list[dict]) -> str:
    """A cluster's figures per router (docs/cluster.md): pin hit rate, cached prompt fraction, load imbalance
    (max over mean of the replicas' busy time) and turns moved off their program's previous replica."""
    width = max([16] + [len(r.get("label", r["policy"])) for r in results])
    header = (
        f"{'policy@router':{width}s} {'replicas':>8s} {'avg JCT':>9s} {'p90':>8s} {'pin hits':>9s} "
        f"{'cached':>7s} {'imbalance':>9s} {'moved':>7s} {'turns':>7s}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.get('label', r['policy']):{width}s} {r['replicas']:8d} {r['avg_jct_s']:9.2f} {r['p90_jct_s']:8.2f} "
            f"{r['pin_hit_rate']:9.3f} {r['cached_fraction']:7.3f} {r['imbalance']:9.3f} "
            f"{r['moved_turns']:7d} {r['turns']:7d}"
        )
    return "\n".join(lines)


def _prefill_ratio(r: dict) -> str:
    """Prefill / prompt tokens; over HTTP, where the server reports cache hits only, prompt minus hits."""
    prompt = max(1, r["prompt_tokens"])
    if "prefill_tokens_computed" in r:
        return f"{r['prefill_tokens_computed'] / prompt:.3f}"
    if "cache_hit_tokens" in r:
        return f"{(r['prompt_tokens'] - r['cache_hit_tokens']) / prompt:.3f}"
    return "-"


def format_summary(summary: list[dict]) -> str:
    """Several seeds: each figure as mean [min, max]; the average JCT's ratios paired by seed, as mean [95%
    bootstrap interval], against the best baseline (named), lmcache and vllm."""
    width = max([16] + [len(r["label"]) for r in summary])
    best = next((r["x_best"]["baseline"] for r in summary if "x_best" in r), None)

    def paired(r: dict, key: str) -> str:
        d = r.get(key)
        return f"{d['mean']:.3f} [{d['lo']:.3f}, {d['hi']:.3f}]" if d else "-"

    def spread(d: dict, fmt: str) -> str:
        return f"{d['mean']:{fmt}} [{d['min']:{fmt}}, {d['max']:{fmt}}]"

    best_header = f"x {best} (best) [95%]" if best else "x best [95%]"
    header = (
        f"{'policy':{width}s} {'avg JCT mean [min, max]':>26s} {best_header:>28s} {'x lmcache [95%]':>22s} "
        f"{'x vllm [95%]':>22s} {'p90 mean':>9s} {'prefill/prompt':>14s} {'leak':>5s}"
    )
    lines = [header, "-" * len(header)]
    for r in summary:
        if r["policy"] == "solo":
            lines.append(f"{r['label']:{width}s} {spread(r['avg_jct_s'], '.2f'):>26s}")
            continue
        lines.append(
            f"{r['label']:{width}s} {spread(r['avg_jct_s'], '.2f'):>26s} {paired(r, 'x_best'):>28s} "
            f"{paired(r, 'x_lmcache'):>22s} {paired(r, 'x_vllm'):>22s} {r['p90_jct_s']['mean']:9.2f} "
            f"{r['prefill_over_prompt']['mean']:14.3f} {r['kv_leaked_blocks']:5d}"
        )
    return "\n".join(lines)


def format_floor(floor: PrefillFloor) -> str:
    """The least prefill / prompt any policy can reach here, to read the table's column against."""
    total = max(1, floor.prompt_tokens)
    return (
        f"prefill floor: {floor.block_level} tokens ({floor.block_level / total:.3f}) with whole"
        f" {floor.block_size}-token blocks, {floor.token_level} ({floor.token_level / total:.3f}) token by token"
    )
