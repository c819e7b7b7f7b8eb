"""Load sweeps: every policy at every rate (and every seed), the solo bound, each policy's capacity (the
highest rate whose average JCT, the mean over seeds, stays within 1.5x of solo; steadier across seeds than a
ratio at one overloaded rate), and the rate at which the strongest baseline reaches 1.5x solo (``knee``): the
rate to compare policies at."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from tether.runtime.replay.runner import ReplaySettings
from tether.runtime.replay.stats import BEST_OF
from tether.runtime.replay.steady import run_seeds
from tether.runtime.replay.workload import TraceProgram

CAPACITY_SLOWDOWN = 1.5


def run_sweep(
    settings: ReplaySettings,
    workload: list[TraceProgram],
    rates: list[float],
    on_progress: Callable[[str, int, int], None] | None = None,
    *,
    seeds: list[int] | None = None,
    draw: int | None = None,
) -> dict:
    seeds = seeds if seeds is not None else [settings.seed]
    memo: dict = {}
    at_rate = []
    for rate in sorted(rates):
        point = run_seeds(
            replace(settings, rate=rate, concurrency=None),
            workload,
            seeds,
            draw=draw,
            solo=True,
            on_progress=on_progress,
            solo_memo=memo,
        )
        at_rate.append({"rate": rate, **point})
    solo = at_rate[0]["summary"][-1]["avg_jct_s"]["mean"]
    caps = capacity(at_rate, solo, CAPACITY_SLOWDOWN)
    return {
        "solo_avg_jct_s": solo,
        "results_at_rate": at_rate,
        "capacity_programs_per_s": caps,
        "knee": knee(at_rate, solo, CAPACITY_SLOWDOWN, caps),
    }


def capacity(at_rate: list[dict], solo: float, slowdown: float) -> dict[str, float]:
    """Per policy label: the highest swept rate at which its mean average JCT is within ``slowdown`` x solo
    (0 if none); a rate counts only if every lower rate also met it."""
    caps: dict[str, float] = {}
    for row in at_rate[0]["summary"][:-1]:
        label, cap = row["label"], 0.0
        for point in at_rate:
            jct = next(r for r in point["summary"] if r["label"] == label)["avg_jct_s"]["mean"]
            if jct > slowdown * solo:
                break
            cap = point["rate"]
        caps[label] = cap
    return caps


def knee(at_rate: list[dict], solo: float, slowdown: float, caps: dict[str, float]) -> dict | None:
    """Where the strongest baseline (of ``stats.BEST_OF`` that ran: the highest capacity, then the lower mean JCT
    at the top rate) reaches ``slowdown`` x solo: ``rate`` interpolated linearly between the two swept rates
    around the crossing (``between``); ``rate`` and ``between`` are None where the sweep does not cross it. None
    when no baseline of ``BEST_OF`` ran."""
    present = [b for b in BEST_OF if b in caps]
    if not present:
        return None

    def jct(point: dict, label: str) -> float:
        return next(r for r in point["summary"] if r["label"] == label)["avg_jct_s"]["mean"]

    base = max(present, key=lambda b: (caps[b], -jct(at_rate[-1], b)))
    target = slowdown * solo
    for lower, upper in zip(at_rate, at_rate[1:]):
        j1, j2 = jct(lower, base), jct(upper, base)
        if j1 <= target < j2:
            r1, r2 = lower["rate"], upper["rate"]
            return {"baseline": base, "rate": r1 + (r2 - r1) * (target - j1) / (j2 - j1), "between": [r1, r2]}
    return {"baseline": base, "rate": None, "between": None}


def plot_sweep(sweep: dict, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    rates = [p["rate"] for p in sweep["results_at_rate"]]
    labels = [r["label"] for r in sweep["results_at_rate"][0]["summary"][:-1]]
    for label in labels:
        jcts = [
            next(r for r in p["summary"] if r["label"] == label)["avg_jct_s"]["mean"]
            for p in sweep["results_at_rate"]
        ]
        ax.plot(rates, jcts, marker="o", label=label, linewidth=2.5 if label == "tether" else 1.2)
    ax.axhline(sweep["solo_avg_jct_s"], color="black", linestyle="--", label="solo")
    ax.axhline(
        CAPACITY_SLOWDOWN * sweep["solo_avg_jct_s"],
        color="grey",
        linestyle=":",
        label=f"{CAPACITY_SLOWDOWN:g}x solo",
    )
    ax.set_xlabel("arrival rate (programs/s)")
    ax.set_ylabel("average JCT (s)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
