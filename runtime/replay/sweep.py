"""Load sweeps: every policy at every rate (and every seed), the solo bound, and each policy's capacity: the
highest rate whose average JCT (the mean over seeds) stays within 2x of solo. Capacity is steadier across seeds
than a ratio at one overloaded rate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from tether.runtime.replay.bench import ReplaySettings
from tether.runtime.replay.steady import run_seeds
from tether.runtime.replay.workload import TraceProgram

CAPACITY_SLOWDOWN = 2.0


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
    return {
        "solo_avg_jct_s": solo,
        "results_at_rate": at_rate,
        "capacity_programs_per_s": capacity(at_rate, solo, CAPACITY_SLOWDOWN),
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
    ax.axhline(CAPACITY_SLOWDOWN * sweep["solo_avg_jct_s"], color="grey", linestyle=":", label="2x solo")
    ax.set_xlabel("arrival rate (programs/s)")
    ax.set_ylabel("average JCT (s)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
