"""The table of ``tether bench agents`` (``format_table``): one mode, one line per k and agent; with the
forced mode, the free and the forced figures of each k and agent side by side on one line."""

from __future__ import annotations

from typing import Any


def format_table(result: Any) -> str:
    """``result``: a ``tether.agents.bench.BenchResult``. Medians per k and agent; the ReAct / planner latency
    ratio on the ReAct line; the notes last."""
    modes = list(getattr(result, "modes", ["free"]))
    lines = _side_by_side(result) if "forced" in modes else _one_mode(result)
    lines.extend(f"note: {n}" for n in result.notes)
    return "\n".join(lines)


def _ratio(row: Any, name: str) -> str:
    return (
        f"{row.latency_ratio:.2f}x"
        if row is not None and row.latency_ratio is not None and name == "react"
        else ""
    )


def _one_mode(result: Any) -> list[str]:
    head = (f"{'k':>2} {'agent':8s} {'n':>3} {'acc':>5} {'lat_s':>7} {'llm':>4} {'prompt':>7} {'compl':>6} "
            f"{'cached':>7} {'tools':>5} {'errs':>4} {'react/planner':>13}")  # fmt: skip
    lines = [head]
    for row in result.rows:
        for name, s in row.agents.items():
            lines.append(
                f"{row.k:>2} {name:8s} {s.n:>3} {s.accuracy:>5.0%} {s.latency_s:>7.2f} {s.llm_calls:>4.0f} "
                f"{s.prompt_tokens:>7.0f} {s.completion_tokens:>6.0f} {s.cached_tokens:>7.0f} "
                f"{s.tool_calls:>5.0f} {s.errors:>4} {_ratio(row, name):>13}"
            )
    return lines


def _side_by_side(result: Any) -> list[str]:
    """free: n, accuracy, median latency; forced: n, median latency [p25-p75], LLM calls, prompt, cached and
    completion tokens, tool calls, errors; then the ratio of each mode."""
    rows = {(row.mode, row.k): row for row in result.rows}
    lines = [
        f"{'':11s} | {'free':^20s} | {'forced (gold trajectories)':^62s} | {'react/planner':^15s}",
        f"{'k':>2} {'agent':8s} | {'n':>3} {'acc':>5} {'lat_s':>7} {'errs':>2} | {'n':>3} {'lat_s':>7} "
        f"{'[p25-p75]':>15s} {'llm':>4} {'prompt':>7} {'cached':>7} {'compl':>6} {'tools':>5} {'errs':>2} | "
        f"{'free':>7} {'forced':>7}",
    ]
    for k in result.ks:
        free, forced = rows.get(("free", k)), rows.get(("forced", k))
        for name in result.agents:
            f = free.agents.get(name) if free is not None else None
            g = forced.agents.get(name) if forced is not None else None
            left = (f"{f.n:>3} {f.accuracy:>5.0%} {f.latency_s:>7.2f} {f.errors:>2}" if f is not None
                    else f"{'-':>3} {'-':>5} {'-':>7} {'-':>2}")  # fmt: skip
            if g is not None:
                interval = f"[{g.latency_p25_s:.2f}-{g.latency_p75_s:.2f}]"
                mid = (
                    f"{g.n:>3} {g.latency_s:>7.2f} {interval:>15s} {g.llm_calls:>4.0f} {g.prompt_tokens:>7.0f} "
                    f"{g.cached_tokens:>7.0f} {g.completion_tokens:>6.0f} {g.tool_calls:>5.0f} {g.errors:>2}"
                )
            else:
                mid = f"{'-':>3} {'-':>7} {'-':>15s} {'-':>4} {'-':>7} {'-':>7} {'-':>6} {'-':>5} {'-':>2}"
            lines.append(
                f"{k:>2} {name:8s} | {left} | {mid} | {_ratio(free, name):>7} {_ratio(forced, name):>7}"
            )
    return lines
