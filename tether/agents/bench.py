"""``tether bench agents``: the planner against the ReAct baseline on ``bench/agent_questions.py``'s questions.

For each ``k`` (lookups a question needs), the same ``n`` questions (``make_questions(k, n, seed)``) go to
every agent, one question at a time and one agent at a time (never overlapping; the agent that goes first
alternates from question to question), with the same tools and the same seeded tool latencies
(``set_latency(latency, seed)`` before each run, so the same call waits the same time for both). Both agents
share one ``AgentRuntime`` (one engine). Per run: wall latency, LLM calls, prompt / completion / cached
tokens, tool calls, whether ``check_answer`` accepts the answer (the expected answer is read only there).
A run that raises counts as wrong, with its error and its wall time.

    agents = {"planner": planner, "react": react}                       # objects with ``await run(q)``
    result = await run_agents_bench(agents, ks=(2, 3), n=5, seed=0)
    print(format_table(result))
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from tether.agents.result import AgentResult
from tether.runtime.bench.checkout import source_checkout

source_checkout()  # the questions and the tools live in the checkout's bench/ and examples/
from bench.agent_questions import check_answer, make_questions  # noqa: E402

WARMUP_SEED_OFFSET = 10_000


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


@dataclass(frozen=True)
class KRow:
    k: int
    agents: dict[str, AgentStats]
    latency_ratio: float | None  # median ReAct latency / median planner latency


@dataclass
class BenchResult:
    ks: list[int]
    n: int
    seed: int
    latency: str
    agents: list[str]
    samples: list[Sample] = field(default_factory=list)
    rows: list[KRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_of(agent: str, k: int, index: int, question: Any, result: AgentResult) -> Sample:
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
    )


def summarize(samples: Sequence[Sample], ks: Sequence[int], agents: Sequence[str]) -> list[KRow]:
    """Per ``k`` and agent: medians of latency, LLM calls, tokens and tool calls, the accuracy and the
    count of runs that raised; and the ratio of the medians of latency, ReAct over planner."""
    rows = []
    for k in ks:
        stats: dict[str, AgentStats] = {}
        for name in agents:
            mine = [s for s in samples if s.k == k and s.agent == name]
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
            )
        ratio = None
        if "react" in stats and "planner" in stats and stats["planner"].latency_s > 0:
            ratio = stats["react"].latency_s / stats["planner"].latency_s
        rows.append(KRow(k, stats, ratio))
    return rows


def _median(samples: Sequence[Sample], attr: str) -> float:
    return float(statistics.median(getattr(s, attr) for s in samples))


async def run_agents_bench(
    agents: Mapping[str, Agent],
    *,
    ks: Sequence[int] = (2, 3, 4, 5, 6),
    n: int = 5,
    seed: int = 0,
    latency: str = "realistic",
    warmup: bool = True,
    log: Any = None,
) -> BenchResult:
    """Run every agent on the same questions, sequentially (see the module docstring). ``warmup``: one
    extra question per agent first (another seed, not counted) so that no agent pays the engine's first
    compilations alone. ``log(text)`` is called after each run."""
    from examples.agent_tools import set_latency

    names = list(agents)
    result = BenchResult(list(ks), n, seed, latency, names)
    if warmup:
        (question,) = make_questions(min(ks), 1, seed + WARMUP_SEED_OFFSET)
        for name in names:
            set_latency(latency, seed)
            await _one(agents[name], name, min(ks), -1, question)
    for k in ks:
        for index, question in enumerate(make_questions(k, n, seed)):
            order = names if index % 2 == 0 else names[::-1]
            for name in order:
                set_latency(latency, seed)
                sample = await _one(agents[name], name, k, index, question)
                result.samples.append(sample)
                if log is not None:
                    mark = "ok " if sample.correct else "err" if sample.error else "no "
                    log(f"k={k} q{index} {name:8s} {mark} {sample.seconds:6.2f}s llm={sample.llm_calls} "
                        f"tools={sample.tool_calls} answer={sample.answer[:60]!r}")  # fmt: skip
    result.rows = summarize(result.samples, ks, names)
    return result


async def _one(agent: Agent, name: str, k: int, index: int, question: Any) -> Sample:
    start = time.perf_counter()
    try:
        res = await agent.run(question.text)
    except Exception as exc:  # noqa: BLE001 - a failed run is a wrong answer, recorded with its error
        return Sample(name, k, index, question.text, "", False, time.perf_counter() - start,
                      0, 0, 0, 0, 0, 0, error=f"{type(exc).__name__}: {exc}")  # fmt: skip
    return sample_of(name, k, index, question, res)


def format_table(result: BenchResult) -> str:
    """One line per k and agent (medians), with the accuracy and the ReAct / planner latency ratio."""
    head = (f"{'k':>2} {'agent':8s} {'n':>3} {'acc':>5} {'lat_s':>7} {'llm':>4} {'prompt':>7} {'compl':>6} "
            f"{'cached':>7} {'tools':>5} {'errs':>4} {'react/planner':>13}")  # fmt: skip
    lines = [head]
    for row in result.rows:
        for name, s in row.agents.items():
            ratio = f"{row.latency_ratio:.2f}x" if row.latency_ratio is not None and name == "react" else ""
            lines.append(
                f"{row.k:>2} {name:8s} {s.n:>3} {s.accuracy:>5.0%} {s.latency_s:>7.2f} {s.llm_calls:>4.0f} "
                f"{s.prompt_tokens:>7.0f} {s.completion_tokens:>6.0f} {s.cached_tokens:>7.0f} "
                f"{s.tool_calls:>5.0f} {s.errors:>4} {ratio:>13}"
            )
    lines.extend(f"note: {n}" for n in result.notes)
    return "\n".join(lines)


async def build_agents(
    model: str, *, max_steps: int = 8, max_replans: int = 2, trace: Any = None, **engine_kwargs: Any
) -> tuple[dict[str, Any], Any, list[str]]:
    """One ``AgentRuntime`` on ``model`` with ``AGENT_TOOLS``, and the agents on it: the planner (if
    ``tether.agents.planner.agent`` imports) and ReAct. Returns (agents, runtime, notes)."""
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
        agents["planner"] = Planner(AGENT_TOOLS, runtime=rt, max_replans=max_replans)
    agents["react"] = ReActAgent(AGENT_TOOLS, runtime=rt, max_steps=max_steps)
    return agents, rt, notes
