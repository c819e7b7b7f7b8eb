"""Scheduler + block manager on CPU, no model: exact plans, chunked prefill, prefix hits, preemption."""

from __future__ import annotations

from tether.kvcache import KVCacheManager
from tether.runtime.engine.runner_output import RunnerOutput
from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.scheduler import Scheduler, SchedulerConfig, SchedulerOutput
from tether.runtime.engine.sequence import FinishReason, Sequence, SequenceStatus

GREEDY = SamplingParams(temperature=0.0, max_tokens=100)


def make(num_blocks: int = 8, block_size: int = 4, budget: int = 8, max_seqs: int = 8):
    kv = KVCacheManager(num_blocks, block_size)
    return Scheduler(SchedulerConfig(budget, max_seqs, 1000), kv), kv


def seq(rid: str, n: int, index: int, base: int = 0) -> Sequence:
    return Sequence(rid, [base + i for i in range(n)], GREEDY, arrival_time=float(index), seq_index=index)


def plan(out: SchedulerOutput) -> list[tuple[str, int, int]]:
    return [(c.seq.request_id, c.start, c.num_new_tokens) for c in out.chunks]


def step(s: Scheduler, kv: KVCacheManager, token: int = 7) -> SchedulerOutput:
    out = s.schedule()
    s.update(out, RunnerOutput(tuple((c.seq.request_id, token) for c in out.chunks if c.samples)))
    kv.check_integrity()
    return out


def test_chunked_prefill_then_decode_under_token_budget():
    s, kv = make()
    a, b = seq("a", 10, 0), seq("b", 6, 1, base=100)
    s.add(a)
    s.add(b)
    assert plan(step(s, kv)) == [("a", 0, 8)]  # budget 8: a's first chunk, b waits
    assert a.output_token_ids == [] and a.num_computed_tokens == 8
    assert plan(step(s, kv)) == [("a", 8, 2), ("b", 0, 6)]  # a samples; b admitted with the rest
    assert a.output_token_ids == [7] and b.output_token_ids == [7]
    assert plan(step(s, kv)) == [("a", 10, 1), ("b", 6, 1)]  # both decode
    assert kv.block_table("a") == [0, 1, 2] and kv.block_table("b") == [3, 4]


def test_prefix_hit_skips_cached_blocks_and_counts_cached_tokens():
    s, kv = make()
    a = seq("a", 9, 0)
    s.add(a)
    step(s, kv)
    s.finish(a, FinishReason.STOP)
    c = seq("c", 11, 1)  # shares a's first 9 tokens: blocks [0..3] and [4..7] are cached
    s.add(c)
    assert plan(step(s, kv)) == [("c", 8, 3)]
    assert c.num_cached_tokens == 8
    assert kv.block_table("c")[:2] == [0, 1]


def test_whole_prompt_cached_still_computes_last_token():
    s, kv = make()
    a = seq("a", 8, 0)
    s.add(a)
    step(s, kv)
    s.finish(a, FinishReason.STOP)
    b = seq("b", 8, 1)
    s.add(b)
    assert plan(step(s, kv)) == [("b", 4, 4)]  # match caps at len-1 tokens: one block of 4
    assert b.num_cached_tokens == 4


def test_preemption_by_recompute_takes_newest_and_requeues_it_first():
    s, kv = make(num_blocks=4, block_size=4, budget=16)
    a, b = seq("a", 7, 0), seq("b", 7, 1, base=50)
    s.add(a)
    s.add(b)
    assert plan(step(s, kv)) == [("a", 0, 7), ("b", 0, 7)]  # 2 blocks each: pool full
    assert plan(step(s, kv)) == [("a", 7, 1), ("b", 7, 1)]  # 8 tokens fit in 2 blocks
    out = step(s, kv)  # a needs a third block: b (newest) is preempted
    assert plan(out) == [("a", 8, 1)]
    assert [p.request_id for p in out.preempted] == ["b"]
    assert b.status is SequenceStatus.WAITING and b.num_computed_tokens == 0 and b.num_preemptions == 1
    assert [q.request_id for q in s.waiting] == ["b"]
    s.finish(a, FinishReason.STOP)
    out = step(s, kv)  # b recomputes prompt + its output token; its first full block hits the cache
    assert plan(out) == [("b", 4, 5)]
    assert b.num_cached_tokens == 0  # counted at first admission only


def test_sequence_preempts_itself_when_alone_is_impossible_for_others():
    s, kv = make(num_blocks=2, block_size=4, budget=16)
    a, b = seq("a", 4, 0), seq("b", 4, 1, base=50)
    s.add(a)
    s.add(b)
    assert plan(step(s, kv)) == [("a", 0, 4), ("b", 0, 4)]
    out = step(s, kv)  # both need a second block, one is free: a takes it after b is preempted
    assert plan(out) == [("a", 4, 1)]
    assert [p.request_id for p in out.preempted] == ["b"]


def test_max_num_seqs_limits_running_set():
    s, kv = make(budget=64, max_seqs=2)
    for i in range(3):
        s.add(seq(f"r{i}", 3, i, base=10 * i))
    assert [r for r, _, _ in plan(step(s, kv))] == ["r0", "r1"]
    assert [q.request_id for q in s.waiting] == ["r2"]


def test_fcfs_never_skips_the_head_of_the_queue():
    s, kv = make(num_blocks=4, block_size=4, budget=64)
    s.add(seq("big", 10, 0))
    s.add(seq("mid", 6, 1, base=90))  # needs 2 blocks, 1 left
    s.add(seq("tiny", 2, 2, base=200))  # would fit, but stays behind mid
    assert plan(step(s, kv)) == [("big", 0, 10)]
    assert [q.request_id for q in s.waiting] == ["mid", "tiny"]
