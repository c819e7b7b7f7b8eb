"""Replays programs against one engine: arrivals, turns, tool pauses, per-program completion times.

One loop serves the real engine (real clock) and the simulation (virtual clock)::

    while programs remain:
        submit every turn whose time has come (arrivals, tools that returned)
        if the engine has work: step it (time passes: real compute or the cost model)
        else: sleep until the next arrival or tool return

Turn k's prompt is turn k-1's prompt + the tokens the engine generated for it + ``new_input_tokens`` fresh
tokens, so prefixes repeat exactly as in the trace. Each turn generates exactly ``output_tokens``.

What the engine learns follows the hints rule (``ProgramHints``): a trace program is an open-ended agent, so a
request carries its program id and turn number alone, and the tool that follows a turn is revealed when that
turn ends (as a server parses it from the output). Nothing says a turn is the last: most trace programs end on
a tool call, and the program ends when its client ends it, after the last turn or after the tool that turn
called has returned (``LLMEngine.end_program``, ``POST /v1/programs/{id}/end`` on a server). A program's
completion time counts to its last output. ``hints="oracle"`` adds the true remaining turn count from the
trace: not a bound, the same policy told more, labelled ``+true-turns`` (``TRUE_TURNS``) wherever reported.

A compiled program (``TraceProgram.compiled``: a workflow whose calls are fixed in advance, as ``tether/dag/`` compiles
them) is different, because its client knows its structure: each request carries the tool that follows it
(``next_tools``), the turns left on the critical path (``remaining_turns``) and, for the calls a turn forks, a
``prefix_group`` naming their shared prompt. Its last call says it is the last. The calls of a forked turn run
side by side, each followed by its own tool; the next turn starts when the slowest tool has returned.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tether.runtime.engine.errors import InvalidRequestError
from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.sequence import ProgramHints, Sequence, TurnOutcome
from tether.runtime.replay.nodes import (
    call_id,
    has_tool,
    program_edges,
    program_nodes,
    tool_node,
    turn_deps,
    turn_node,
)
from tether.runtime.replay.workload import TraceProgram
from tether.runtime.sim.clock import Clock
from tether.runtime.tracing.events import TraceEvent
from tether.runtime.tracing.writer import TraceSink
from tether.tools.durations import ToolDurationStats

TRUE_TURNS = "+true-turns"  # the label suffix of a run whose requests carried the true remaining turns


class ReplayError(RuntimeError):
    """A program's turn could not be replayed (refused by the engine, failed, or cut short); names both."""

    def __init__(self, program_id: str, turn: int, reason: str) -> None:
        super().__init__(f"program {program_id!r} turn {turn}: {reason}")
        self.program_id, self.turn, self.reason = program_id, turn, reason


_TURN, _END = "turn", "end"  # a driver event: submit a program's next turn, or end the program

if TYPE_CHECKING:
    from tether.runtime.engine.llm_engine import LLMEngine


@dataclass
class ReplayProgramRun:
    """One trace program's progress through a replay: its turn, its token context, arrival and finish."""

    program: TraceProgram
    arrival: float
    seed: int
    turn: int = 0
    context: list[int] = field(default_factory=list)
    finish: float | None = None  # when its last turn's output came
    prompt_tokens: int = 0
    ended: bool = False  # its client ended it (after the last turn's tool, if that turn called one)
    outputs: dict[int, list[int]] = field(default_factory=dict)  # the current turn's outputs, by call
    done_at: dict[int, float] = field(default_factory=dict)  # when each of the current turn's calls output
    ready: float = 0.0  # when the current turn's slowest tool returns (its calls so far)

    @property
    def jct(self) -> float:
        assert self.finish is not None
        return self.finish - self.arrival


def extend_prompt(context: list[int], program: TraceProgram, k: int, seed: int, vocab: int) -> None:
    """Turn ``k``'s prompt, in place: ``context`` (turn k-1's prompt and outputs) plus the turn's fresh input
    tokens, drawn from the program's seed and the turn, so every replay (in process or over HTTP) sends the same
    prompts and their prefixes repeat exactly as in the trace."""
    turn = program.turns[k]
    rng = random.Random(seed * 7919 + k)
    new = turn.prompt_tokens if k == 0 else turn.new_input_tokens
    context.extend(rng.randrange(vocab) for _ in range(new))
    assert len(context) == turn.prompt_tokens, (program.program_id, k)


@dataclass(frozen=True)
class Arrivals:
    """Either open-loop arrival times (one per program) or a closed loop of ``concurrency`` programs."""

    times: tuple[float, ...] | None = None
    concurrency: int | None = None

    @staticmethod
    def poisson(n: int, rate: float, seed: int) -> Arrivals:
        rng = random.Random(seed)
        t, times = 0.0, []
        for _ in range(n):
            times.append(t)
            t += rng.expovariate(rate)
        return Arrivals(times=tuple(times))


HINT_MODES = ("online", "oracle")


class ReplayDriver:
    def __init__(
        self,
        programs: list[TraceProgram],
        arrivals: Arrivals,
        clock: Clock,
        *,
        seed: int = 0,
        vocab: int = 256,
        on_progress: Callable[[int, int], None] | None = None,
        hints: str = "online",
        trace: TraceSink | None = None,
        tool_stats: ToolDurationStats | None = None,
    ) -> None:
        """``trace``: where each program's span, its turns (``llm_turn``) and its tool pauses (``tool_call``, the
        trace's tool) go, next to the engine's own events (``engine.trace_to``). The engine that ``run`` drives
        must be built with ``turn_outcome=driver.outcome`` (what each turn's output says, from the trace) and
        with ``tool_stats=driver.tool_stats``: the driver runs the programs' tools, so it is what records their
        durations (the pause from a turn's end to its program's next request)."""
        if hints not in HINT_MODES:
            raise ValueError(f"hints must be one of {HINT_MODES}, got {hints!r}")
        self.engine: LLMEngine | None = None
        self.hints = hints
        self.tool_stats = tool_stats if tool_stats is not None else ToolDurationStats()
        self._paused: dict[
            str, tuple[str, float]
        ] = {}  # program -> (its tool, when the turn calling it ended)
        self.programs = programs
        self.arrivals = arrivals
        self.clock = clock
        self.seed = seed
        self.vocab = vocab
        self.on_progress = on_progress
        self._events: list[tuple[float, int, int, str]] = []  # (time, tie-break, program index, _TURN | _END)
        self._tie = 0
        self._runs: list[ReplayProgramRun] = []
        self._by_request: dict[str, tuple[int, int]] = {}  # request id -> (program index, call of its turn)
        self._next_closed = 0
        self.trace = trace
        self._offset = 0.0
        self._turn_started: dict[int, float] = {}

    def run(self, engine: LLMEngine) -> list[ReplayProgramRun]:
        """Replay every program on ``engine`` (built as ``__init__`` says); their runs, in program order."""
        self.engine = engine
        # the driver's clock -> the trace's wall clock: the engine tracer's own offset where there is one, so the
        # driver's events and the engine's share one clock (a second time.time() would shift one set by its delay)
        offset = engine.trace_offset()
        self._offset = offset if offset is not None else time.time() - self.clock.now()
        self._start_arrivals(self.clock.now())
        done = 0
        while done < len(self._runs):
            now = self.clock.now()
            done += self._fire_due(now)
            if done == len(self._runs):
                break
            if self.engine.has_unfinished():
                for out in self.engine.step():
                    if out.finished:
                        ids = list(out.outputs[0].token_ids)
                        done += self._turn_done(out.request_id, ids, out.error, out.num_cached_tokens)
                if self.engine.last_plan is not None:
                    continue
            # Idle, or every waiting turn is blocked on memory: time must pass (arrivals, tools, pin expiries).
            wake = [
                t
                for t in (self._events[0][0] if self._events else None, self._next_expiry(now))
                if t is not None
            ]
            if not wake:
                raise RuntimeError(
                    f"replay stalled: {len(self._runs) - done} programs unfinished, nothing queued"
                )
            self.clock.sleep_until(max(min(wake), self.clock.now() + 1e-6))
        return self._runs

    def _start_arrivals(self, start: float) -> None:
        """A run per program, and the first events: every arrival (open loop) or the first ``concurrency``."""
        self._runs = [
            ReplayProgramRun(p, 0.0, self.seed * 1_000_003 + i) for i, p in enumerate(self.programs)
        ]
        if self.arrivals.concurrency is not None:
            for _ in range(min(self.arrivals.concurrency, len(self._runs))):
                self._start_next_closed(start)
        else:
            assert self.arrivals.times is not None and len(self.arrivals.times) >= len(self._runs)
            for i, t in enumerate(self.arrivals.times[: len(self._runs)]):
                self._runs[i].arrival = start + t
                self._push(start + t, i)

    def _next_expiry(self, now: float) -> float | None:
        """The next pin expiry still ahead; one already past is handled by the next step, not by waiting."""
        return self.engine.next_timer(after=now)

    def _fire_due(self, now: float) -> int:
        """Submit every turn and end every program due by ``now``; how many programs ended."""
        ended = 0
        while self._events and self._events[0][0] <= now:
            _, _, i, kind = heapq.heappop(self._events)
            if kind == _END:
                ended += self._end(i)
            else:
                self._submit(i)
        return ended

    def _push(self, t: float, i: int, kind: str = _TURN) -> None:
        self._tie += 1
        heapq.heappush(self._events, (t, self._tie, i, kind))

    def _start_next_closed(self, now: float) -> None:
        if self._next_closed < len(self._runs):
            self._runs[self._next_closed].arrival = now
            self._push(now, self._next_closed)
            self._next_closed += 1

    def _emit(
        self,
        kind: str,
        run: ReplayProgramRun,
        node: str | None,
        attrs: dict,
        start: float | None = None,
        end: float | None = None,
    ) -> None:
        """``start``/``end``: on the driver's clock; ``end`` defaults to now."""
        if self.trace is not None:
            now = (self.clock.now() if end is None else end) + self._offset
            begun = None if start is None else start + self._offset
            self.trace.emit(TraceEvent(kind, run.program.program_id, now, node, attrs, begun))  # type: ignore[arg-type]

    def _emit_tool(self, run: ReplayProgramRun, k: int) -> None:
        """The trace events of the tool pauses after turn ``k``'s calls: each from its call's output on, and
        the end of its node (``nodes.tool_node``)."""
        for j, call in enumerate(run.program.turns[k].calls):
            if not has_tool(run.program, k, j):
                continue
            attrs = {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": call.tool or "tool",
                "gen_ai.tool.call.id": f"{run.program.program_id}#{call_id(k, j)}",
                "status": "ok",
                "duration_s": call.wait_seconds,
            }
            began, node = run.done_at[j], tool_node(k, j)
            self._emit("tool_call", run, node, attrs, began, began + call.wait_seconds)
            done = {"category": "node", "duration_s": call.wait_seconds}
            self._emit("node_end", run, node, done, began, began + call.wait_seconds)

    def _emit_turn_start(self, run: ReplayProgramRun) -> None:
        """``program_start`` (with the program's whole DAG: ``nodes.program_nodes``) before its first turn, and
        a ``node_start`` per call of the turn being submitted."""
        if self.trace is None:
            return
        program, k = run.program, run.turn
        if k == 0:
            nodes = program_nodes(program)
            attrs = {"program": program.program_id, "nodes": nodes, "edges": program_edges(nodes)}
            self._emit("program_start", run, None, attrs)
        deps = turn_deps(program, k)
        for j in range(len(program.turns[k].calls)):
            attrs = {"category": "node", "node_kind": "llm", "level": 2 * k, "deps": deps}
            self._emit("node_start", run, turn_node(k, j), attrs)

    def _emit_call_done(self, run: ReplayProgramRun, j: int, started: float) -> None:
        """Call ``j`` of the current turn has output: its node ends, its tool's node (if any) starts."""
        now, k = self.clock.now(), run.turn
        node = turn_node(k, j)
        self._emit("node_end", run, node, {"category": "node", "duration_s": now - started}, started)
        if has_tool(run.program, k, j):
            attrs = {"category": "node", "node_kind": "tool", "level": 2 * k + 1, "deps": [node]}
            self._emit("node_start", run, tool_node(k, j), attrs)

    def _submit(self, i: int) -> None:
        run = self._runs[i]
        program = run.program
        turn = program.turns[run.turn]
        now = self.clock.now()
        if run.turn:  # the tool pause that just ended
            self._emit_tool(run, run.turn - 1)
        self._emit_turn_start(run)
        self._turn_started[i] = now
        extend_prompt(run.context, program, run.turn, run.seed, self.vocab)
        remaining = program.num_turns - run.turn - 1 if self.hints == "oracle" or program.compiled else None
        calls = turn.calls
        group = f"{program.program_id}#{run.turn}" if program.compiled and len(calls) > 1 else None
        run.outputs, run.done_at, run.ready = {}, {}, now
        for j, call in enumerate(calls):
            run.prompt_tokens += turn.prompt_tokens
            if program.compiled:  # the client knows the workflow: what follows this call, and what is left
                hints = ProgramHints(
                    program_id=program.program_id,
                    turn=run.turn,
                    next_tools=(call.tool,) if call.tool else (),
                    remaining_turns=remaining,
                    last_turn=remaining == 0 and call.tool is None,
                    prefix_group=group,
                )
            else:
                hints = ProgramHints(program_id=program.program_id, turn=run.turn, remaining_turns=remaining)
            params = SamplingParams(temperature=0.0, max_tokens=call.output_tokens, ignore_eos=True)
            rid = f"{program.program_id}#{call_id(run.turn, j)}"
            self._record_pause(program.program_id)
            try:
                self.engine.add_request(list(run.context), params, request_id=rid, hints=hints)
            except InvalidRequestError as exc:  # a prompt over the model's context, say
                raise ReplayError(program.program_id, run.turn, f"{exc.field}: {exc.reason}") from None
            self._by_request[rid] = (i, j)

    def outcome(self, seq: Sequence) -> TurnOutcome:
        """Called by the engine when a turn has ended: the tool the trace's turn called (as a server parses it
        from the output), or none. ``last_turn`` only for a compiled program's last call: an open-ended program's
        last turn looks like any other, and the program ends when its client ends it (``_end``). The tool starts
        now: its duration is recorded when the program's next request goes out (``_record_pause``)."""
        i, j = self._by_request[seq.request_id]
        run = self._runs[i]
        call = run.program.turns[run.turn].calls[j]
        last = run.program.compiled and run.turn == run.program.num_turns - 1 and call.tool is None
        pid = run.program.program_id
        if last:
            self._paused.pop(pid, None)
        else:
            self._paused[pid] = (call.tool, self.clock.now())
        return TurnOutcome(call.tool, last_turn=last)

    def _record_pause(self, pid: str) -> None:
        """The program's next request goes out: the tool its last finished turn called has returned."""
        paused = self._paused.pop(pid, None)
        if paused is not None and paused[0] is not None:
            self.tool_stats.observe(paused[0], max(0.0, self.clock.now() - paused[1]))

    def _turn_done(self, request_id: str, output: list[int], error: str | None, cached: int = 0) -> int:
        i, j = self._by_request.pop(request_id)
        run = self._runs[i]
        if error:
            raise ReplayError(run.program.program_id, run.turn, f"failed: {error}")
        turn = run.program.turns[run.turn]
        call = turn.calls[j]
        if len(output) != call.output_tokens:
            raise ReplayError(
                run.program.program_id,
                run.turn,
                f"generated {len(output)} tokens, the trace says {call.output_tokens} (does the prompt and the "
                "output fit the model's context?)",
            )
        now = self.clock.now()
        run.outputs[j], run.done_at[j] = output, now
        run.ready = max(run.ready, now + call.wait_seconds)
        if self.trace is not None:
            attrs = {
                "gen_ai.operation.name": "chat",
                "gen_ai.conversation.id": run.program.program_id,
                "request_id": request_id,
                "turn": run.turn,
                "status": "ok",
                "gen_ai.usage.input_tokens": turn.prompt_tokens,
                "gen_ai.usage.output_tokens": len(output),
                "gen_ai.usage.cache_read.input_tokens": cached,
            }
            started = self._turn_started.get(i, now)
            self._emit("llm_turn", run, turn_node(run.turn, j), attrs, started)
            self._emit_call_done(run, j, started)
        if len(run.outputs) < len(turn.calls):
            return 0  # a forked call still runs: the turn joins when all have
        self._turn_started.pop(i, None)
        for k in range(len(turn.calls)):
            run.context.extend(run.outputs[k])
        run.turn += 1
        if run.turn < run.program.num_turns:
            self._push(run.ready, i)
            return 0
        run.finish = (
            now  # the completion time counts to the last output: the final tool's time is the same anywhere
        )
        if turn.tool is None:
            return self._end(i)
        self._push(run.ready, i, _END)  # the final tool call runs, then the client ends the program
        return 0

    def _end(self, i: int) -> int:
        """The client ends program ``i`` (``POST /v1/programs/{id}/end`` on a server): after its last turn, or
        after the tool that turn called has returned. Returns 1, a finished program."""
        run = self._runs[i]
        now = self.clock.now()
        if run.program.turns[-1].tool is not None:
            self._emit_tool(run, run.program.num_turns - 1)
        self._paused.pop(run.program.program_id, None)
        self.engine.end_program(run.program.program_id)
        self._emit("program_end", run, None, {"status": "ok", "duration_s": now - run.arrival}, run.arrival)
        run.ended = True
        if self.on_progress:
            self.on_progress(sum(r.ended for r in self._runs), len(self._runs))
        if self.arrivals.concurrency is not None:
            self._start_next_closed(now)
        return 1
