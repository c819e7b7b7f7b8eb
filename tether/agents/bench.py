"""``tether bench agents``: the planner against the ReAct baseline on ``bench/agent_questions.py``'s questions.

For each ``k`` (lookups a question needs), the same ``n`` questions (``make_questions(k, n, seed)``) go to
every agent, one question at a time and one agent at a time (never overlapping; the agent that goes first
alternates from question to question), with the same tools and the same seeded tool latencies
(``set_latency(latency, seed)`` before each run, so the same call waits the same time for both). Both agents
share one ``AgentRuntime`` (one engine). Per run: wall latency, LLM calls, prompt / completion / cached
tokens, tool calls, whether ``check_answer`` accepts the answer (the expected answer is read only there).
A run that raises counts as wrong, with its error and its wall time. ``modes``: ``free`` (the agents decode
what the model writes) and ``forced`` (each LLM call decodes the agent's reference text on the real engine,
through ``tether.agents.forced.ForcedBackend``; docs/agents.md, "Forced mode").

    agents = {"planner": planner, "react": react}                       # objects with ``await run(q)``
    result = await run_agents_bench(agents, ks=(2, 3), n=5, seed=0)
    print(format_table(result))
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from tether.agents.bench_table import format_table  # noqa: F401 - re-exported
from tether.agents.forced import ForcedBackend
from tether.agents.result import AgentResult
from tether.runtime.bench.checkout import source_checkout

source_checkout()  # the questions and the tools live in the checkout's bench/ and examples/
from bench.agent_questions import check_answer, make_questions  # noqa: E402
from bench.agent_references import make_reference  # noqa: E402

WARMUP_SEED_OFFSET = 10_000
MODES = ("free", "forced")


class Agent(Protocol):
    async def run(self, question: str) -> AgentResult: ...


@dataclass(frozen=True)
class Sample:
    """One agent on one question."""

    agent: str
    k: int
    index: int
    question: str
    answer: str
    correct: bool
    seconds: float
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    tool_calls: int
    tool_errors: int
    error: str | None = None
    mode: str = "free"
    calls: tuple[tuple[str, dict[str, Any]], ...] = ()  # (tool, arguments), by task / turn number
    llm_seconds: float = 0.0  # the LLM calls' seconds, summed (each from its request to its result)
    tool_seconds: float = 0.0  # the tool calls' seconds, summed (the planner's overlap: more than their span)


@dataclass(frozen=True)
class AgentStats:
    """Medians over one ``k``'s questions for one agent, and its accuracy (correct / questions)."""

    n: int
    accuracy: float
    latency_s: float
    llm_calls: float
    prompt_tokens: float
    completion_tokens: float
    cached_tokens: float
    tool_calls: float
    errors: int
    latency_p25_s: float = 0.0  # the interval of the latency: its 25th and 75th percentiles (inclusive)
    latency_p75_s: float = 0.0


@dataclass(frozen=True)
class KRow:
    k: int
    agents: dict[str, AgentStats]
    latency_ratio: float | None  # median ReAct latency / median planner latency
    mode: str = "free"


@dataclass
class BenchResult:
    ks: list[int]
    n: int
    seed: int
    latency: str
    agents: list[str]
    modes: list[str] = field(default_factory=lambda: ["free"])
    samples: list[Sample] = field(default_factory=list)
    rows: list[KRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_of(
    agent: str, k: int, index: int, question: Any, result: AgentResult, mode: str = "free"
) -> Sample:
    calls = tuple((o.tool, dict(o.args)) for o in sorted(result.observations, key=lambda o: o.task))
    return Sample(
        agent=agent,
        k=k,
        index=index,
        question=question.text,
        answer=result.answer,
        correct=check_answer(question, result.answer),
        seconds=result.seconds,
        llm_calls=len(result.llm_calls),
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        cached_tokens=sum(c.cached_tokens for c in result.llm_calls),
        tool_calls=len(result.observations),
        tool_errors=sum(o.error is not None for o in result.observations),
        mode=mode,
        calls=calls,
        llm_seconds=sum(c.seconds for c in result.llm_calls),
        tool_seconds=sum(o.seconds or 0.0 for o in result.observations),
    )


def summarize(
    samples: Sequence[Sample], ks: Sequence[int], agents: Sequence[str], mode: str = "free"
) -> list[KRow]:
    """Per ``k`` and agent, over ``mode``'s samples: medians of latency, LLM calls, tokens and tool calls, the
    latency's 25th-75th percentile interval, the accuracy and the count of runs that raised; and the ratio of
    the medians of latency, ReAct over planner."""
    rows = []
    for k in ks:
        stats: dict[str, AgentStats] = {}
        for name in agents:
            mine = [s for s in samples if s.k == k and s.agent == name and s.mode == mode]
            if not mine:
                continue
            stats[name] = AgentStats(
                n=len(mine),
                accuracy=sum(s.correct for s in mine) / len(mine),
                latency_s=_median(mine, "seconds"),
                llm_calls=_median(mine, "llm_calls"),
                prompt_tokens=_median(mine, "prompt_tokens"),
                completion_tokens=_median(mine, "completion_tokens"),
                cached_tokens=_median(mine, "cached_tokens"),
                tool_calls=_median(mine, "tool_calls"),
                errors=sum(s.error is not None for s in mine),
                latency_p25_s=_quantile(mine, "seconds", 0),
                latency_p75_s=_quantile(mine, "seconds", 2),
            )
        ratio = None
        if "react" in stats and "planner" in stats and stats["planner"].latency_s > 0:
            ratio = stats["react"].latency_s / stats["planner"].latency_s
        rows.append(KRow(k, stats, ratio, mode))
    return rows


def _median(samples: Sequence[Sample], attr: str) -> float:
    return float(statistics.median(getattr(s, attr) for s in samples))


def _quantile(samples: Sequence[Sample], attr: str, which: int) -> float:
    """The quartile ``which`` (0: 25th, 2: 75th percentile; inclusive method) of ``attr``."""
    values = [float(getattr(s, attr)) for s in samples]
    return values[0] if len(values) == 1 else statistics.quantiles(values, n=4, method="inclusive")[which]


async def run_agents_bench(
    agents: Mapping[str, Agent],
    *,
    ks: Sequence[int] = (2, 3, 4, 5, 6),
    n: int = 5,
    seed: int = 0,
    latency: str = "realistic",
    warmup: bool = True,
    log: Any = None,
    modes: Sequence[str] = ("free",),
    forced: ForcedBackend | None = None,
) -> BenchResult:
    """Run every agent on the same questions, sequentially (see the module docstring), in each of ``modes``
    (``free``; ``forced``: on ``forced``, the runtime's ``ForcedBackend``, each run decodes its agent's
    reference trajectory, ``bench/agent_references.py``). Per question the mode that goes first alternates,
    as the agent does. ``warmup``: one extra question per agent and mode first (another seed, not counted) so
    that no agent pays the engine's first compilations alone. ``log(text)`` is called after each run."""
    from examples.agent_tools import set_latency

    _check_modes(modes, forced)
    names = list(agents)
    result = BenchResult(list(ks), n, seed, latency, names, list(modes))
    if warmup:
        (question,) = make_questions(min(ks), 1, seed + WARMUP_SEED_OFFSET)
        for mode in modes:
            for name in names:
                set_latency(latency, seed)
                await _one(agents[name], name, min(ks), -1, question, mode, forced)
    for k in ks:
        for index, question in enumerate(make_questions(k, n, seed)):
            for mode in _alternate(list(modes), index):
                for name in _alternate(names, index):
                    set_latency(latency, seed)
                    sample = await _one(agents[name], name, k, index, question, mode, forced)
                    result.samples.append(sample)
                    if log is not None:
                        log(_progress(sample))
    result.rows = [row for mode in modes for row in summarize(result.samples, ks, names, mode)]
    return result


def _check_modes(modes: Sequence[str], forced: ForcedBackend | None) -> None:
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes or len(set(modes)) != len(modes):
        raise ValueError(f"modes: {list(modes)!r}: each of {', '.join(MODES)} at most once, at least one")
    if "forced" in modes and forced is None:
        raise ValueError("forced: the forced mode needs the runtime's ForcedBackend (install_forced)")


def _alternate(items: list[str], index: int) -> list[str]:
    return items if index % 2 == 0 else items[::-1]


def _progress(sample: Sample) -> str:
    mark = "ok " if sample.correct else "err" if sample.error else "no "
    return (f"k={sample.k} q{sample.index} {sample.mode:6s} {sample.agent:8s} {mark} {sample.seconds:6.2f}s "
            f"llm={sample.llm_calls} tools={sample.tool_calls} answer={sample.answer[:60]!r}"
            + (f" error={sample.error[:120]!r}" if sample.error else ""))  # fmt: skip


async def _one(
    agent: Agent, name: str, k: int, index: int, question: Any, mode: str = "free", forced: Any = None
) -> Sample:
    """One run; in the forced mode under ``name``'s reference script, and a run whose tool calls are not
    the reference's (or whose script is not used up) counts as an error."""
    reference = make_reference(question) if mode == "forced" else None
    if reference is not None:
        forced.expect(reference.script(name))
    start = time.perf_counter()
    try:
        res = await agent.run(question.text)
        if reference is not None:
            forced.finish()
    except Exception as exc:  # noqa: BLE001 - a failed run is a wrong answer, recorded with its error
        return Sample(name, k, index, question.text, "", False, time.perf_counter() - start,
                      0, 0, 0, 0, 0, 0, error=f"{type(exc).__name__}: {exc}", mode=mode)  # fmt: skip
    finally:
        if reference is not None and forced.active:
            forced.finish(strict=False)
    sample = sample_of(name, k, index, question, res, mode)
    if reference is not None and [list(c) for c in sample.calls] != [list(c) for c in reference.calls]:
        error = (
            f"forced run made the calls {list(sample.calls)!r}, not the reference's {list(reference.calls)!r}"
        )
        return replace(sample, correct=False, error=error)
    return sample


async def build_agents(
    model: str, *, max_steps: int = 8, max_replans: int = 2, trace: Any = None, **engine_kwargs: Any
) -> tuple[dict[str, Any], Any, list[str]]:
    """One ``AgentRuntime`` on ``model`` with ``AGENT_TOOLS``, and the agents on it: the planner (if
    ``tether.agents.planner.agent`` imports) and ReAct, each with its few-shot examples from
    ``examples/agent_examples.py``. Returns (agents, runtime, notes)."""
    from examples.agent_examples import PLAN_EXAMPLES, REACT_EXAMPLES
    from examples.agent_tools import AGENT_TOOLS
    from tether.agents.react import ReActAgent
    from tether.agents.runtime import AgentRuntime

    rt = await AgentRuntime.create(AGENT_TOOLS, model=model, trace=trace, **engine_kwargs)
    agents: dict[str, Any] = {}
    notes: list[str] = []
    try:
        from tether.agents.planner.agent import Planner
    except ImportError as exc:
        notes.append(f"planner not available ({exc}): ReAct only")
    else:
        agents["planner"] = Planner(AGENT_TOOLS, runtime=rt, max_replans=max_replans, examples=PLAN_EXAMPLES)
    agents["react"] = ReActAgent(AGENT_TOOLS, runtime=rt, max_steps=max_steps, examples=REACT_EXAMPLES)
    return agents, rt, notes
