"""Per-tool duration statistics: what the scheduler asks to pick a KV time-to-live or a CPU-offload plan.

Cold start follows Continuum: a tool with fewer than ``min_samples`` observations is answered by the
distribution over all tools, and before any observation at all by an exponential prior (mean 1 s).

```
 observations of the tool:   0 .. min_samples-1            >= min_samples
 any observation at all?     no -> "prior"  yes -> "global"  "tool"
```
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from tether.tools.distributions import (
    PRIOR_SUPPORT_QUANTILES,
    DurationModel,
    EmpiricalDistribution,
    ExponentialPrior,
    check_duration,
)
from tether.tools.errors import ToolError, ToolStatsError
from tether.tools.traces import NegativePolicy, ToolCallRecord, iter_tool_calls, read_tool_calls

__all__ = [
    "PRIOR_SUPPORT_QUANTILES",
    "DurationModel",
    "DurationSource",
    "EmpiricalDistribution",
    "ExponentialPrior",
    "NegativePolicy",
    "ToolCallRecord",
    "ToolDurationStats",
    "ToolError",
    "ToolStatsError",
    "iter_tool_calls",
    "read_tool_calls",
]

DurationSource = Literal["tool", "global", "prior"]
SNAPSHOT_VERSION = 1


def _check_tool(tool: Any) -> str:
    if not isinstance(tool, str) or not tool:
        raise ToolStatsError(
            f"tool name must be a non-empty string, got {tool!r}",
            tool=tool if isinstance(tool, str) else None,
        )
    return tool


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ToolStatsError(f"{name} must be an int >= 1, got {value!r}")
    return value


class ToolDurationStats:
    """Per-tool ``EmpiricalDistribution``s plus one over all tools, and the exponential prior.

    Rules: ``observe`` validates before it changes anything; a tool is answered by its own distribution once
    it has ``min_samples`` observations (counted over all time, not only those kept), else by the global
    distribution if anything was observed, else by the prior; ``None`` as the tool (next tool unknown) is
    answered by global or prior. Every method is thread-safe: one lock guards mutations and queries, and
    ``model_for`` hands out a copy, so a model held by the scheduler never changes under it.
    """

    def __init__(self, min_samples: int = 100, max_samples: int = 1024, prior_mean_s: float = 1.0):
        self.min_samples = _check_positive_int("min_samples", min_samples)
        self.max_samples = _check_positive_int("max_samples", max_samples)
        self.prior = ExponentialPrior(prior_mean_s)
        self._global = EmpiricalDistribution(max_samples)
        self._tools: dict[str, EmpiricalDistribution] = {}
        self._totals: dict[str, float] = {}  # all-time sum of each tool's observations (running means)
        self._lock = threading.Lock()

    # --- observations -----------------------------------------------------------------------------------

    def observe(self, tool: str, seconds: float) -> None:
        """Record one call of ``tool`` that took ``seconds`` (finite, >= 0); ``ToolStatsError`` otherwise."""
        tool = _check_tool(tool)
        x = check_duration(seconds, tool=tool)
        with self._lock:
            self._add(tool, x)

    def observe_many(self, pairs: Iterable[tuple[str, float]]) -> int:
        """Record every ``(tool, seconds)`` pair; all are checked first, so a bad one records none.

        Returns how many were recorded.
        """
        checked: list[tuple[str, float]] = []
        for pair in pairs:
            try:
                tool, seconds = pair
            except (TypeError, ValueError):
                raise ToolStatsError(f"observation {pair!r} is not a (tool, seconds) pair") from None
            tool = _check_tool(tool)
            checked.append((tool, check_duration(seconds, tool=tool)))
        with self._lock:
            for tool, x in checked:
                self._add(tool, x)
        return len(checked)

    def observe_workload(self, path: str | Path, *, on_negative: NegativePolicy = "error") -> int:
        """Record every tool call of a workload trace; a malformed line records nothing. Returns the count.

        ``on_negative`` ("error", "clamp" to 0, "skip") handles negative measured durations (see
        ``tether.tools.traces``).
        """
        calls = read_tool_calls(path, on_negative=on_negative)
        return self.observe_many((call.tool, call.seconds) for call in calls)

    @classmethod
    def from_workload(
        cls,
        path: str | Path,
        *,
        min_samples: int = 100,
        max_samples: int = 1024,
        prior_mean_s: float = 1.0,
        on_negative: NegativePolicy = "error",
    ) -> ToolDurationStats:
        """Statistics of every (tool, tool_seconds) with a non-null tool in a ``*.jsonl`` workload trace.

        ``ToolStatsError`` names the file and line of the first malformed line; negative durations are
        handled as ``on_negative`` says.
        """
        stats = cls(min_samples=min_samples, max_samples=max_samples, prior_mean_s=prior_mean_s)
        stats.observe_workload(path, on_negative=on_negative)
        return stats

    def _add(self, tool: str, x: float) -> None:
        dist = self._tools.get(tool)
        if dist is None:
            dist = self._tools[tool] = EmpiricalDistribution(self.max_samples)
        dist.add(x)
        self._totals[tool] = self._totals.get(tool, 0.0) + x
        self._global.add(x)

    def restore(self, tool: str, samples: Iterable[float], count: int) -> None:
        """Add a tool's persisted history: its kept ``samples`` (arrival order) and its all-time ``count``
        (>= the samples). The samples also join the global distribution, which counts ``count`` more
        observations. Checked first; ``ToolStatsError`` changes nothing. ``tether.tools.store`` uses it."""
        tool = _check_tool(tool)
        xs = [check_duration(x, tool=tool) for x in samples][-self.max_samples :]
        if isinstance(count, bool) or not isinstance(count, int) or count < len(xs) or not xs:
            raise ToolStatsError(f"tool {tool!r}: count {count!r} with {len(xs)} samples", tool=tool)
        with self._lock:
            dist = self._tools.get(tool)
            if dist is None:
                dist = self._tools[tool] = EmpiricalDistribution(self.max_samples)
            dist.extend(xs)
            dist._count += count - len(xs)
            self._totals[tool] = self._totals.get(tool, 0.0) + sum(xs) * count / len(xs)
            self._global.extend(xs)
            self._global._count += count - len(xs)

    def history(self) -> dict[str, tuple[int, tuple[float, ...]]]:
        """Every tool's all-time count and kept samples in arrival order (what ``restore`` takes back)."""
        with self._lock:
            return {name: (dist.count, tuple(dist._arrivals)) for name, dist in sorted(self._tools.items())}

    # --- queries ----------------------------------------------------------------------------------------

    def source(self, tool: str | None) -> DurationSource:
        """Which model answers for ``tool``: its own ("tool"), all tools' ("global") or the prior."""
        with self._lock:
            return self._source(tool)

    def model_for(self, tool: str | None) -> DurationModel:
        """The model that answers for ``tool`` (see ``source``), as a snapshot later observations don't touch."""
        with self._lock:
            model = self._live_model(tool)
            return model.copy() if isinstance(model, EmpiricalDistribution) else model

    def cdf(self, tool: str | None, tau: float) -> float:
        """P(the call of ``tool`` is done within ``tau`` seconds), from ``model_for(tool)``."""
        with self._lock:
            return self._live_model(tool).cdf(tau)

    def quantile(self, tool: str | None, q: float) -> float:
        """Seconds by which the call of ``tool`` is done with probability ``q``, from ``model_for(tool)``."""
        with self._lock:
            return self._live_model(tool).quantile(q)

    def mean(self, tool: str | None) -> float:
        """Expected seconds of a call of ``tool``, from ``model_for(tool)``."""
        with self._lock:
            return self._live_model(tool).mean

    def running_mean(self, tool: str) -> float | None:
        """Mean of every observation ever recorded for ``tool`` itself (no global fallback, no minimum count);
        ``None`` before its first. A snapshot restores it as the mean of the kept samples."""
        with self._lock:
            dist = self._tools.get(_check_tool(tool))
            return None if dist is None else self._totals[tool] / dist.count

    def count(self, tool: str | None = None) -> int:
        """Observations ever recorded for ``tool`` (0 if never seen), or for all tools when ``None``."""
        with self._lock:
            if tool is None:
                return self._global.count
            dist = self._tools.get(_check_tool(tool))
            return 0 if dist is None else dist.count

    def tools(self) -> tuple[str, ...]:
        """Names of the tools observed so far, sorted."""
        with self._lock:
            return tuple(sorted(self._tools))

    def _source(self, tool: str | None) -> DurationSource:
        if tool is not None:
            dist = self._tools.get(_check_tool(tool))
            if dist is not None and dist.count >= self.min_samples:
                return "tool"
        return "global" if self._global.count > 0 else "prior"

    def _live_model(self, tool: str | None) -> EmpiricalDistribution | ExponentialPrior:
        source = self._source(tool)
        if source == "tool":
            assert tool is not None
            return self._tools[tool]
        return self._global if source == "global" else self.prior

    # --- persistence and integrity ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable snapshot of the settings and every distribution (kept samples in arrival order)."""
        with self._lock:
            return {
                "version": SNAPSHOT_VERSION,
                "min_samples": self.min_samples,
                "max_samples": self.max_samples,
                "prior_mean_s": self.prior.mean_s,
                "global": self._global.to_dict(),
                "tools": {name: dist.to_dict() for name, dist in sorted(self._tools.items())},
            }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolDurationStats:
        """Rebuild from ``to_dict`` output; ``ToolStatsError`` (naming the tool where one is at fault)."""
        if not isinstance(data, dict) or data.get("version") != SNAPSHOT_VERSION:
            raise ToolStatsError(f"not a version-{SNAPSHOT_VERSION} ToolDurationStats snapshot")
        try:
            stats = cls(data["min_samples"], data["max_samples"], data["prior_mean_s"])
            global_data, tools_data = data["global"], data["tools"]
        except KeyError as e:
            raise ToolStatsError(f"snapshot lacks the field {e.args[0]!r}") from None
        if not isinstance(tools_data, dict):
            raise ToolStatsError("snapshot field 'tools' must map tool names to distributions")
        stats._global = EmpiricalDistribution.from_dict(global_data)
        for name, dist_data in tools_data.items():
            try:
                dist = stats._tools[_check_tool(name)] = EmpiricalDistribution.from_dict(dist_data)
                stats._totals[name] = dist.mean * dist.count if len(dist) else 0.0
            except ToolStatsError as e:
                raise ToolStatsError(f"tool {name!r}: {e}", tool=name) from None
        stats.check_integrity()
        return stats

    def check_integrity(self) -> None:
        """Raise ``ToolStatsError`` unless every distribution is consistent and the global count is the sum."""
        with self._lock:
            dists = [(None, self._global), *self._tools.items()]
            for name, dist in dists:
                try:
                    dist.check_integrity()
                    if dist.max_samples != self.max_samples:
                        raise ToolStatsError(f"max_samples {dist.max_samples} != {self.max_samples}")
                    if name is not None and dist.count == 0:
                        raise ToolStatsError("listed with no observation")
                except ToolStatsError as e:
                    raise ToolStatsError(
                        f"{'global' if name is None else f'tool {name!r}'}: {e}", tool=name
                    ) from None
            total = sum(dist.count for dist in self._tools.values())
            if total != self._global.count:
                raise ToolStatsError(f"global count {self._global.count} != {total}, the sum over tools")

    def __repr__(self) -> str:
        with self._lock:
            return (
                f"ToolDurationStats(tools={len(self._tools)}, count={self._global.count}, "
                f"min_samples={self.min_samples}, max_samples={self.max_samples}, prior_mean_s={self.prior.mean_s})"
            )
