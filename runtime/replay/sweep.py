"""Load sweeps: every policy at every rate, the solo bound, and each policy's capacity (the highest rate whose
average JCT stays within 2x of solo). Capacity is steadier across seeds than a ratio at one overloaded rate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from runtime.replay.bench import ReplaySettings, run_replay, solo_jct
from runtime.replay.workload import Program

CAPACITY_SLOWDOWN = 2.0


def run_sweep(
    settings: ReplaySettings,
    programs: list[Program],
    rates: list[float],
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    solo = solo_jct(settings, programs)
    at_rate = []
    for rate in sorted(rates):
        results = run_replay(replace(settings, rate=rate, concurrency=None), programs, on_progress)
        at_rate.append({"rate": rate, "results": results})
    return {
        "solo_avg_jct_s": solo,
        "results_at_rate": at_rate,
        "capacity_programs_per_s": capacity(at_rate, solo, settings.policies),
    }


def capacity(at_rate: list[dict], solo: float, policies: tuple[str, ...]) -> dict[str, float]:
    """Highest swept rate at which the policy's average JCT is within ``CAPACITY_SLOWDOWN`` x solo (0 if none);
    a rate counts only if every lower rate also met it."""
    caps: dict[str, float] = {}
    for policy in policies:
        cap = 0.0
        for point in at_rate:
            row = next(r for r in point["results"] if r["policy"] == policy)
            if row["avg_jct_s"] > CAPACITY_SLOWDOWN * solo:
                break
            cap = point["rate"]
        caps[policy] = cap
    return caps


def plot_sweep(sweep: dict, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    rates = [p["rate"] for p in sweep["results_at_rate"]]
    policies = [r["policy"] for r in sweep["results_at_rate"][0]["results"]]
    for policy in policies:
        jcts = [
            next(r for r in p["results"] if r["policy"] == policy)["avg_jct_s"]
            for p in sweep["results_at_rate"]
        ]
        ax.plot(rates, jcts, marker="o", label=policy, linewidth=2.5 if policy == "tether" else 1.2)
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
