"""Each baseline's distinguishing decision, on tiny scripted scenarios (docs/scheduling.md names the sources)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import pytest

from tether.kvcache import KVCacheManager
from tether.runtime.engine.runner_output import RunnerOutput
from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.scheduler import ScheduledChunk, Scheduler, SchedulerConfig, SchedulerOutput
from tether.runtime.engine.sequence import FinishReason, ProgramHints, Sequence
from tether.runtime.policies import get_policy
from tether.runtime.policies.autellix import MIN_SERVICE_S, STARVATION_RATIO, queue_level
from tether.runtime.policies.base import Drop, Free, Park, Pin, PolicyContext, TurnEnd
from tether.runtime.policies.infercept import swap_budget_blocks
from tether.runtime.programs.layer import ProgramManager
from tether.runtime.programs.table import ProgramTable
from tether.tools.durations import ToolDurationStats

GREEDY = SamplingParams(temperature=0.0, max_tokens=100)


@dataclass(frozen=True)
class LinearPrefill:
    """A cost model whose prefill takes 1 ms per token and whose copies take 1 ms per block."""

    name: str = "linear-test"

    def step_time(self, chunks, copied_blocks: int = 0) -> float:
        return 1e-3 * (sum(n for n, _ in chunks) + copied_blocks)

    def prefill_time(self, new_tokens: int, cached_tokens: int = 0) -> float:
        return 1e-3 * new_tokens


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def context(
    kv: KVCacheManager | None = None, stats: ToolDurationStats | None = None, clock=None
) -> PolicyContext:
    return PolicyContext(
        kv or KVCacheManager(16, 4),
        ProgramTable(),
        stats or ToolDurationStats(),
        LinearPrefill(),
        clock or Clock(),
        lambda: 0,
    )


def turn_end(tool: str | None, context_tokens: int = 2000, pid: str = "p") -> TurnEnd:
    return TurnEnd(pid, tool, None, context_tokens, context_tokens // 16, 0.0)


def seq(rid: str, n: int, index: int, base: int = 0, pid: str | None = None) -> Sequence:
    hints = ProgramHints(program_id=pid) if pid else None
    return Sequence(
        rid, [base + i for i in range(n)], GREEDY, arrival_time=float(index), seq_index=index, hints=hints
    )


def step(s: Scheduler, kv: KVCacheManager) -> SchedulerOutput:
    out = s.schedule()
    s.update(out, RunnerOutput(tuple((c.seq.request_id, 7) for c in out.chunks if c.samples)))
    kv.check_integrity()
    return out


def plan(out: SchedulerOutput) -> list[tuple[str, int, int]]:
    return [(c.seq.request_id, c.start, c.num_new_tokens) for c in out.chunks]


# -- continuum-fixed: the released ToolCallEstimator.set_up_pin ---------------------------------------------
def test_continuum_fixed_pins_two_seconds_by_the_tools_own_mean_from_its_first_sample():
    stats = ToolDurationStats()  # min_samples 100: model_for would still answer with the global distribution
    stats.observe("fast", 1.5)
    stats.observe("slow", 2.5)
    ctx, policy = context(stats=stats), get_policy("continuum-fixed")
    assert policy.on_turn_end(turn_end("fast"), ctx) == Pin(2.0)
    assert policy.on_turn_end(turn_end("slow"), ctx) == Free()
    assert policy.on_turn_end(turn_end("never-seen"), ctx) == Pin(2.0)  # mean "or 0.0"
    assert policy.on_turn_end(turn_end(None), ctx) == Free()  # no tool call, no pin
    stats.observe("edge", 2.0)
    assert policy.on_turn_end(turn_end("edge"), ctx) == Pin(2.0)  # only a mean above 2 s is refused
    stats.observe("fast", 4.5)  # running mean (1.5 + 4.5) / 2 = 3 s
    assert policy.on_turn_end(turn_end("fast"), ctx) == Free()


# -- continuum: tau* = argmax P(tau) * (T * eta + reload) - tau ----------------------------------------------
def two_point_stats() -> ToolDurationStats:
    stats = ToolDurationStats()
    for _ in range(50):
        stats.observe("bash", 1.0)
        stats.observe("bash", 3.0)  # 100 samples: the tool's own CDF, P(1) = 0.5, P(3) = 1
    return stats


@pytest.mark.parametrize(
    ("queue_delay", "context_tokens", "ttl"),
    [
        (4.0, 2000, 3.0),  # benefit 4 + 2 = 6: tau 1 -> 0.5*6-1 = 2, tau 3 -> 6-3 = 3
        (1.0, 2000, 1.0),  # benefit 3: tau 1 -> 0.5, tau 3 -> 0
        (0.0, 1500, 0.0),  # benefit 1.5: tau 1 -> -0.25, tau 3 -> -1.5: no pin
    ],
)
def test_continuum_ttl_is_the_argmax_of_the_paper_rule(queue_delay, context_tokens, ttl):
    ctx, policy = context(stats=two_point_stats()), get_policy("continuum")
    if queue_delay:
        ctx.programs.observe_evicted_queue_delay(queue_delay)
    assert ctx.programs.memoryfulness() == 1.0  # no finished program yet
    assert policy.benefit_s(turn_end("bash", context_tokens), ctx) == pytest.approx(
        queue_delay + context_tokens * 1e-3
    )
    assert policy.on_turn_end(turn_end("bash", context_tokens), ctx) == (Pin(ttl) if ttl else Free())


def test_continuum_t_is_a_sliding_average_and_eta_the_turn_correlation():
    programs = ProgramTable()
    for d in (1.0, 2.0, 6.0):
        programs.observe_evicted_queue_delay(d)
    assert programs.evicted_queue_delay() == 3.0
    for _ in range(100):
        programs.observe_evicted_queue_delay(0.5)
    assert programs.evicted_queue_delay() == 0.5  # the window keeps the newest 100
    for pid, turns in (("a", 2), ("b", 4)):
        programs.open(pid, 0.0).turns_seen = turns
        programs.close(pid)
    k = [1, 2, 1, 2, 3, 4]
    r = [1, 0, 3, 2, 1, 0]
    assert programs.memoryfulness() == pytest.approx(-statistics.correlation(k, r))


def test_continuum_gives_up_the_pin_that_expires_last():
    kv = KVCacheManager(16, 4)
    for i, (pid, expiry) in enumerate((("early", 5.0), ("late", 9.0))):
        kv.allocate(pid, 8)
        kv.cache_blocks(pid, list(range(100 * i, 100 * i + 8)), 8)
        kv.pin(pid, pid, expiry)
        kv.free(pid)
    kv.check_integrity()
    actions = get_policy("continuum").relieve(context(kv), blocks_needed=1)
    assert actions == [Drop("late")]


# -- relieve_pins: eager (before any preemption) vs when_idle (only when nothing else can run) -----------------
def pinned_scheduler(mode: str, num_blocks: int = 8):
    """A finished 8-token turn pinned as "P" (2 blocks of 4 tokens); ``relieve`` drops it."""
    kv = KVCacheManager(num_blocks, 4)
    calls: list[int] = []

    def relieve(blocks: int, requester=None) -> bool:
        calls.append(blocks)
        return kv.unpin("P") > 0 if kv.has_pin("P") else False

    s = Scheduler(SchedulerConfig(64, 8, 1000), kv, relieve=relieve, relieve_pins=mode)
    p = seq("p", 8, 0, base=1000)
    s.add(p)
    step(s, kv)
    assert kv.pin("P", "p", 100.0) == (0, 1)
    s.finish(p, FinishReason.STOP)
    return s, kv, calls


@pytest.mark.parametrize("mode", ["eager", "when_idle"])
def test_when_idle_preempts_another_running_turn_before_giving_up_a_pin(mode):
    s, kv, calls = pinned_scheduler(mode)
    a, b = seq("a", 11, 1, base=0), seq("b", 11, 2, base=100)
    s.add(a)
    s.add(b)
    assert plan(step(s, kv)) == [("a", 0, 11), ("b", 0, 11)]
    assert plan(step(s, kv)) == [("a", 11, 1), ("b", 11, 1)]  # 2 pinned + 3 + 3 blocks: memory is full
    out = step(s, kv)  # a's 13th token needs a fourth block
    if mode == "eager":
        assert calls == [1] and not kv.has_pin("P")
        assert plan(out) == [("a", 12, 1), ("b", 12, 1)] and out.preempted == ()
    else:
        assert calls == [] and kv.has_pin("P")  # b could still run: it is preempted instead
        assert plan(out) == [("a", 12, 1)] and [x.request_id for x in out.preempted] == ["b"]


@pytest.mark.parametrize("mode", ["eager", "when_idle"])
def test_when_idle_gives_up_the_pin_for_an_admission_only_when_nothing_runs(mode):
    s, kv, calls = pinned_scheduler(mode)
    c = seq("c", 6, 1, base=100)
    s.add(c)
    step(s, kv)  # c runs on 2 blocks; 4 are free
    big = seq("big", 28, 2, base=300)  # needs 7 blocks: more than is free even when c is gone
    s.add(big)
    out = step(s, kv)
    if mode == "eager":
        assert calls == [3, 1] and not kv.has_pin("P") and plan(out) == [("c", 6, 1)]
        return
    assert calls == [] and plan(out) == [("c", 6, 1)] and kv.has_pin("P")  # c runs: big waits
    s.finish(c, FinishReason.STOP)
    out = step(s, kv)  # nothing runs now: the pin goes
    assert calls == [1] and not kv.has_pin("P") and plan(out) == [("big", 0, 28)]


def test_a_waiting_turn_keeps_its_programs_expired_pin_under_continuum():
    clock = Clock()
    kv = KVCacheManager(16, 4)
    ctx = context(kv, clock=clock)
    manager = ProgramManager(get_policy("continuum"), ctx, kv)
    first = seq("t0", 8, 0, pid="prog")
    manager.on_request(first)
    kv.allocate("t0", 8)
    kv.cache_blocks("t0", first.token_ids, 8)
    first.num_computed_tokens = 8
    kv.pin("prog", "t0", 1.0)
    kv.free("t0")
    clock.t = 0.5
    manager.on_request(seq("t1", 12, 1, pid="prog"))  # the next turn arrives and waits
    clock.t = 2.0
    manager.before_step()
    assert kv.has_pin("prog")  # expired, but its program's turn is waiting
    kv.check_integrity()


# -- autellix: PLAS over discretised queues, starvation guard, first-time service -----------------------------
def test_autellix_queues_demote_by_attained_service_and_keep_fcfs_inside_a_queue():
    assert [queue_level(t) for t in (0, 1023, 1024, 2047, 2048, 5000, 10**6)] == [0, 0, 1, 1, 2, 3, 7]
    ctx, policy = context(), get_policy("autellix")
    seqs = []
    for i, (pid, tokens) in enumerate((("old-big", 5000), ("small", 100), ("mid", 1500), ("small2", 900))):
        ctx.programs.open(pid, float(i)).attained_tokens = tokens
        seqs.append(seq(f"{pid}-t", 4, i, pid=pid))
    order = [s.request_id for s in sorted(seqs, key=lambda s: policy.priority(s, ctx))]
    assert order == ["small-t", "small2-t", "mid-t", "old-big-t"]  # queue 0 in call arrival order, 1, 3


def test_autellix_starvation_guard_promotes_a_program_that_waited_too_long():
    clock = Clock()
    ctx, policy = context(clock=clock), get_policy("autellix")
    state = ctx.programs.open("big", 0.0)
    state.attained_tokens, state.service_s, state.waiting_since = 5000, 2.0, 0.0
    s = seq("big-t", 4, 0, pid="big")
    clock.t = STARVATION_RATIO * 2.0 - 0.01
    assert policy.priority(s, ctx)[0] == 3
    clock.t = STARVATION_RATIO * 2.0
    assert policy.priority(s, ctx)[0] == 0 and state.promoted
    fresh = ctx.programs.open("fresh", 0.0)
    fresh.attained_tokens, fresh.waiting_since = 5000, 0.0  # no service yet: the floor applies
    clock.t = STARVATION_RATIO * MIN_SERVICE_S - 0.01
    assert policy.priority(seq("fresh-t", 4, 1, pid="fresh"), ctx)[0] == 3


def test_attained_service_ignores_recomputed_tokens():
    clock = Clock()
    kv = KVCacheManager(16, 4)
    ctx = context(kv, clock=clock)
    manager = ProgramManager(get_policy("autellix"), ctx, kv)
    s = seq("t0", 100, 0, pid="prog")
    manager.on_request(s)

    def account(start: int, n: int, seconds: float) -> None:
        manager.before_step()
        clock.t += seconds
        manager.account(SchedulerOutput((ScheduledChunk(s, start, n),), ()))

    account(0, 64, 0.5)
    account(64, 36, 0.25)
    account(0, 100, 0.25)  # recompute after a preemption or an eviction
    account(100, 1, 0.125)
    state = ctx.programs.get("prog")
    assert state.attained_tokens == 101 and state.computed_high == 101
    assert state.service_s == 1.125  # engine seconds of every step it ran in, recompute included


def test_autellix_re_sorts_the_queues_every_step():
    assert getattr(get_policy("autellix"), "resort_each_step", False)
    kv = KVCacheManager(8, 4)
    keys = {"a": (1,), "b": (0,)}

    class Keys:
        def priority(self, s: Sequence) -> tuple:
            return keys[s.request_id]

    sched = Scheduler(SchedulerConfig(64, 8, 1000), kv, Keys())
    for i, rid in enumerate("ab"):
        sched.add(seq(rid, 4, i))
    keys["a"] = (-1,)
    sched.resort()
    assert [s.request_id for s in sched.waiting] == ["a", "b"]


# -- infercept: per-step swap budget ----------------------------------------------------------------------------
def test_infercept_swap_budget_follows_the_released_rule():
    assert swap_budget_blocks(0, 16) == (0, 21)  # memory full: out (0.670 * 384 + 94.0) // 16
    assert swap_budget_blocks(10, 16) == (2, 16)  # 160 free tokens move 80 tokens from out to in
    assert swap_budget_blocks(1000, 16) == (497, 0)  # memory free: no swap-out


def test_infercept_parks_within_the_swap_budget_and_keeps_the_rest_on_gpu():
    clock = Clock()
    kv = KVCacheManager(24, 4, clock=clock, num_cpu_blocks=32)
    ctx = context(kv, clock=clock)
    policy = get_policy("infercept")
    policy.swap_budget = lambda ctx: (0, 2)  # two blocks out per step
    policy.on_turn_end = lambda end, ctx: Park(5.0)
    manager = ProgramManager(policy, ctx, kv)
    for i, pid in enumerate(("a", "b", "c")):
        s = seq(f"{pid}-t0", 12, i, base=100 * i, pid=pid)
        s.hints = ProgramHints(program_id=pid, next_tool="bash", remaining_turns=3)
        manager.on_request(s)
        kv.allocate(s.request_id, 12)
        kv.cache_blocks(s.request_id, s.token_ids, 12)
        s.num_computed_tokens = 12
    manager.before_step()  # credit 2
    for i, pid in enumerate(("a", "b")):
        s = seq(f"{pid}-t0", 12, i, base=100 * i, pid=pid)
        s.hints = ProgramHints(program_id=pid, next_tool="bash", remaining_turns=3)
        s.num_computed_tokens = 12
        manager.on_turn_end(s)
        kv.free(s.request_id)
    assert kv.pins["a"].parked and not kv.pins["b"].parked  # a's 3 blocks spent the credit (debt 1)
    assert manager.stats.swaps_over_budget == 1
    manager.before_step()  # credit -1 + 2 = 1: b may go now, but it is parked only under pressure
    assert manager.relieve(blocks_needed=3)
    assert kv.pins["b"].parked and manager.stats.pins_dropped == 0
    manager.before_step()  # credit -2 + 2 = 0: nothing may be swapped out; a pin that must go is dropped
    s = seq("c-t0", 12, 2, base=200, pid="c")
    s.hints = ProgramHints(program_id="c", next_tool="bash", remaining_turns=3)
    s.num_computed_tokens = 12
    manager.on_turn_end(s)
    kv.free(s.request_id)
    assert not kv.pins["c"].parked
    assert manager.relieve(blocks_needed=3) and not kv.has_pin("c") and manager.stats.pins_dropped == 1
    kv.check_integrity()
