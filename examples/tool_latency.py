"""Measured tool latencies for the example tools: each example tool's latency is drawn from the durations the
shared workload traces measured for the trace tools that do the same kind of work (``TRACE_TOOLS``).

The durations are fitted offline into ``examples/workloads/tool_latency.json`` (so a checkout without
``../shared`` runs the same draws); refit with ``python -m examples.tool_latency [TRACE ...]`` (default: the
shared traces). They are used as measured, in seconds, without scaling; negative durations (measurement
artifacts, two in ``terminal_bench_agents.jsonl``) are clamped to 0.

    seconds = draw("lookup", key)    # one of the measured durations, picked by a seeded RNG
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FITTED_PATH = HERE / "workloads" / "tool_latency.json"
DEFAULT_TRACES = (
    HERE.parent.parent / "shared" / "workloads" / "terminal_bench_agents.jsonl",
    HERE.parent.parent / "shared" / "workloads" / "swe_smith_agents.jsonl",
)

# What each example tool does, and the trace tools (Terminal-Bench's ``bash:<command>``) doing the same:
# lookup reads one row of a local CSV file (cat / grep / head); search_docs searches local text files (grep /
# find); read_doc prints one local file (cat / head); calculator and convert_units evaluate one arithmetic
# expression in the shell (echo, as in ``echo $((...))``; ``bash:python3`` runs whole programs, up to 62 s).
TRACE_TOOLS: dict[str, tuple[str, ...]] = {
    "lookup": ("bash:cat", "bash:grep", "bash:head"),
    "search_docs": ("bash:grep", "bash:find"),
    "read_doc": ("bash:cat", "bash:head"),
    "calculator": ("bash:echo",),
    "convert_units": ("bash:echo",),
}


class ToolLatencyError(ValueError):
    """The fitted durations are missing or malformed, or a tool has none (the message names the tool or file)."""


def fit(traces: list[Path]) -> dict[str, object]:
    """The fitted document: per example tool, the sorted measured durations of its ``TRACE_TOOLS`` in ``traces``."""
    from tether.tools.traces import read_tool_calls

    by_trace_tool: dict[str, list[float]] = {}
    for path in traces:
        for call in read_tool_calls(path, on_negative="clamp"):
            by_trace_tool.setdefault(call.tool, []).append(call.seconds)
    samples: dict[str, list[float]] = {}
    for tool, sources in TRACE_TOOLS.items():
        found = sorted(s for src in sources for s in by_trace_tool.get(src, ()))
        if not found:
            raise ToolLatencyError(f"no durations of {', '.join(sources)} (for {tool}) in the traces")
        samples[tool] = found
    return {
        "source": f"tool_seconds of {', '.join(p.name for p in traces)}; regenerate with "
        "`python -m examples.tool_latency`",
        "trace_tools": {tool: list(src) for tool, src in TRACE_TOOLS.items()},
        "samples": samples,
    }


@functools.cache
def samples(path: Path = FITTED_PATH) -> dict[str, tuple[float, ...]]:
    """The fitted durations per example tool (sorted)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        table = doc["samples"]
        out = {tool: tuple(float(s) for s in values) for tool, values in table.items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ToolLatencyError(f"{path}: cannot read the fitted tool durations ({exc})") from exc
    for tool, values in out.items():
        if not values or min(values) < 0:
            raise ToolLatencyError(f"{path}: tool {tool!r} needs durations >= 0, got {len(values)} values")
    return out


def draw(tool: str, key: str) -> float:
    """One measured duration of ``tool``, picked uniformly by an RNG seeded with ``key`` (the same key, the
    same duration)."""
    table = samples()
    if tool not in table:
        raise ToolLatencyError(f"no measured durations for tool {tool!r} (known: {', '.join(table)})")
    values = table[tool]
    rng = random.Random(hashlib.sha256(key.encode()).digest())
    return values[rng.randrange(len(values))]


def main(argv: list[str]) -> int:
    traces = [Path(a) for a in argv] or list(DEFAULT_TRACES)
    doc = fit(traces)
    FITTED_PATH.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    counts = ", ".join(f"{t}: {len(v)}" for t, v in doc["samples"].items())  # type: ignore[union-attr]
    print(f"{FITTED_PATH}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
