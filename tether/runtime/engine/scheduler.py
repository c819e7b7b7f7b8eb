"""Continuous batching under a per-step token budget, chunked prefill, prefix reuse, preemption by recompute.

``schedule()`` returns a plan, the model runner executes it, ``update()`` takes the sampled tokens back and
finishes the sequences that are done (vLLM's ``update_from_output``). One rule covers every case: each
scheduled sequence advances ``num_computed_tokens`` towards ``num_tokens`` by as many tokens as the budget
allows.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tether.kvcache import KVCacheManager, PrefixMatch
from tether.runtime.engine.admission import AdmissionPolicy, RequestFCFS
from tether.runtime.engine.runner_output import RunnerOutput
from tether.runtime.engine.sequence import FinishReason, Sequence, SequenceStatus


@dataclass(frozen=True)
class SchedulerConfig:
    max_num_batched_tokens: int = 2048
    max_num_seqs: int = 256
    max_model_len: int = 4096

    def __post_init__(self) -> None:
        if self.max_num_batched_tokens < 1 or self.max_num_seqs < 1 or self.max_model_len < 2:
            raise ValueError(f"invalid scheduler config {self}")


@dataclass(frozen=True)
class ScheduledChunk:
    """``num_new_tokens`` tokens of ``seq`` starting at ``start`` (its computed count when scheduled)."""

    seq: Sequence
    start: int
    num_new_tokens: int

    @property
    def end(self) -> int:
        return self.start + self.num_new_tokens

    @property
    def samples(self) -> bool:
        """The chunk reaches the sequence's last token, so the step produces its next token."""
        return self.end == self.seq.num_tokens


@dataclass(frozen=True)
class SchedulerOutput:
    chunks: tuple[ScheduledChunk, ...]
    preempted: tuple[Sequence, ...]

    @property
    def num_batched_tokens(self) -> int:
        return sum(c.num_new_tokens for c in self.chunks)

    @property
    def is_empty(self) -> bool:
        return not self.chunks


@dataclass(frozen=True)
class StepUpdate:
    """What a step's tokens did, in plan order: ``outputs`` got a token (each finished one included),
    ``first_tokens`` got their first, ``finished`` ended (``finish_reason`` set; ``error`` too for a token its
    grammar rejected)."""

    outputs: tuple[Sequence, ...] = ()
    first_tokens: tuple[Sequence, ...] = ()
    finished: tuple[Sequence, ...] = ()


class OutputCheck(Protocol):
    """Whether a sequence is done after its newest token (``StopChecker`` and the grammars, ``finish.py``)."""

    def check(self, seq: Sequence) -> FinishReason | None: ...

    def forget(self, request_id: str) -> None: ...


@dataclass
class SchedulerStats:
    """Token accounting. Without preemption, each admitted prompt satisfies
    ``prompt tokens = prefill_tokens_computed + cache_hit_tokens`` exactly; a recompute adds to both."""

    prefill_tokens_computed: int = 0  # computed tokens at positions inside the prompt
    cache_hit_tokens: int = 0  # prompt tokens served by the prefix cache at admission
    preemptions: int = 0


class Scheduler:
    def __init__(
        self,
        config: SchedulerConfig,
        kv: KVCacheManager,
        admission: AdmissionPolicy | None = None,
        *,
        relieve: Callable[[int, Sequence | None], bool] | None = None,
        on_admit: Callable[[Sequence, PrefixMatch], None] | None = None,
        on_preempt: Callable[[Sequence], None] | None = None,
        on_finish: Callable[[Sequence, FinishReason], None] | None = None,
        checks: OutputCheck | None = None,
        relieve_pins: str = "eager",
    ) -> None:
        """``relieve(blocks, requester)``: asked to give up pinned KV for ``requester`` (the waiting sequence being
        admitted; ``None`` for a running one that must grow); True if it released something (the scheduler then
        tries again). ``relieve_pins``: when it is asked: ``"eager"`` before any preemption or stalled admission;
        ``"when_idle"`` only when nothing else can run (a running turn that alone remains running, or an
        admission while nothing runs); otherwise other running turns are preempted first and a stalled admission
        waits for running turns to finish. ``on_admit(seq, prefix)``: after a sequence
        took its blocks (the program layer ends the program's pin there). ``on_preempt(seq)``: before a
        preempted sequence frees its blocks (a program layer may keep them, e.g. swap them to CPU memory).
        ``on_finish(seq, reason)``: before a finishing sequence frees its blocks (the program layer pins them at a
        turn's end). ``checks``: when a sequence is done after a token (none: only ``finish`` ends one)."""
        self.config = config
        self.kv = kv
        self.admission = admission or RequestFCFS()
        self.relieve = relieve or (lambda blocks, requester: False)
        self.on_admit = on_admit or (lambda seq, prefix: None)
        self.on_preempt = on_preempt or (lambda seq: None)
        self.on_finish = on_finish or (lambda seq, reason: None)
        self.checks = checks
        if relieve_pins not in ("eager", "when_idle"):
            raise ValueError(f"relieve_pins must be 'eager' or 'when_idle', got {relieve_pins!r}")
        self.relieve_eagerly = relieve_pins == "eager"
        self.waiting: list[Sequence] = []  # sorted by admission priority
        self.running: list[Sequence] = []  # sorted by admission priority
        self.stats = SchedulerStats()
        self._blocked: tuple[str, int] | None = (
            None  # (head request, free blocks) at its last failed admission
        )

    @property
    def num_preemptions(self) -> int:
        return self.stats.preemptions

    # -- queues ---------------------------------------------------------------------------------------------
    def add(self, seq: Sequence) -> None:
        seq.status = SequenceStatus.WAITING
        self._insert(self.waiting, seq)

    def _insert(self, queue: list[Sequence], seq: Sequence) -> None:
        """Insert after every entry whose current priority is <= ``seq``'s (binary search: priorities are
        computed only for the O(log n) entries probed, which find the same place as computing them all)."""
        priority = self.admission.priority
        queue.insert(bisect.bisect_right(queue, priority(seq), key=priority), seq)

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    def finish(self, seq: Sequence, reason: FinishReason, now: float | None = None) -> None:
        """End a sequence wherever it is and give its blocks back (full computed blocks stay cached), after
        ``on_finish``; ``now``: its finish time."""
        self.on_finish(seq, reason)
        if seq in self.running:
            self.running.remove(seq)
        elif seq in self.waiting:
            self.waiting.remove(seq)
        if self.kv.has_seq(seq.request_id):
            self.kv.free(seq.request_id)
        seq.status = SequenceStatus.FINISHED
        seq.finish_reason = reason
        seq.finish_time = now
        if self.checks is not None:
            self.checks.forget(seq.request_id)

    def resort(self) -> None:
        """Re-sort both queues by the current priorities (for policies whose priorities change over time)."""
        self.waiting.sort(key=self.admission.priority)
        self.running.sort(key=self.admission.priority)

    # -- planning -------------------------------------------------------------------------------------------
    def schedule(self) -> SchedulerOutput:
        budget = self.config.max_num_batched_tokens
        chunks: list[ScheduledChunk] = []
        preempted: list[Sequence] = []

        for seq in list(self.running):
            if budget == 0:
                break
            if seq.status is not SequenceStatus.RUNNING:
                continue  # preempted earlier in this loop
            n = min(seq.num_uncomputed_tokens, budget)
            if self.kv.num_blocks_needed(seq.request_id, seq.num_computed_tokens + n) == 0:
                chunks.append(ScheduledChunk(seq, seq.num_computed_tokens, n))  # its blocks suffice
                budget -= n
                continue
            while self.kv.allocate_slots(seq.request_id, seq.num_computed_tokens + n) is None:
                may_relieve = self.relieve_eagerly or len(self.running) == 1  # when_idle: seq alone runs
                if may_relieve and self.relieve(self._shortfall(seq, seq.num_computed_tokens + n), None):
                    continue
                victim = self.running[-1]
                self._preempt(victim)
                preempted.append(victim)
                if victim is seq:
                    break
            if seq.status is not SequenceStatus.RUNNING:
                continue
            chunks.append(ScheduledChunk(seq, seq.num_computed_tokens, n))
            budget -= n

        if not preempted:
            budget = self._admit(budget, chunks)
        return SchedulerOutput(tuple(chunks), tuple(preempted))

    def _admit(self, budget: int, chunks: list[ScheduledChunk]) -> int:
        while self.waiting and budget > 0 and len(self.running) < self.config.max_num_seqs:
            seq = self.waiting[0]
            if self._blocked == self._memory_state(seq):
                break  # the head failed in this very memory state; matching again (O(context)) cannot help
            prefix = seq.last_match = self.kv.match(seq.token_ids, since=seq.last_match)
            n = min(seq.num_tokens - prefix.num_tokens, budget)
            if self.kv.allocate_slots(seq.request_id, prefix.num_tokens + n, prefix) is None:
                may_relieve = self.relieve_eagerly or not self.running  # when_idle: nothing runs
                if may_relieve and self.relieve(self._shortfall(seq, prefix.num_tokens + n, prefix), seq):
                    continue  # match again: what was given up may have been this program's own pin
                self._blocked = self._memory_state(seq)
                break  # head-of-line: the order is the policy's, never skipped
            self._blocked = None
            self.waiting.pop(0)
            self.on_admit(seq, prefix)
            seq.num_computed_tokens = prefix.num_tokens
            self.stats.cache_hit_tokens += min(prefix.num_tokens, seq.num_prompt_tokens)
            if not seq.admitted:
                seq.num_cached_tokens = prefix.num_tokens
                seq.admitted = True
            seq.status = SequenceStatus.RUNNING
            self._insert(self.running, seq)
            chunks.append(ScheduledChunk(seq, seq.num_computed_tokens, n))
            budget -= n
        return budget

    def _memory_state(self, head: Sequence) -> tuple:
        """Everything that can turn a failed admission into a success: free blocks, pins, the running set."""
        kv = self.kv
        return (head.request_id, kv.num_free_blocks, kv.num_pinned_blocks, len(kv.pins), len(self.running))

    def _shortfall(self, seq: Sequence, num_tokens: int, prefix: PrefixMatch | None = None) -> int:
        needed = self.kv.num_blocks_needed(seq.request_id, num_tokens, prefix)
        return max(1, needed - self.kv.num_free_blocks)

    def _preempt(self, seq: Sequence) -> None:
        """Preemption by recompute: blocks go back (full ones stay in the prefix cache, so the recompute
        often hits them), the sequence returns to the waiting queue in its priority place."""
        self.running.remove(seq)
        self.on_preempt(seq)
        self.kv.free(seq.request_id)
        seq.num_computed_tokens = 0
        seq.num_preemptions += 1
        self.stats.preemptions += 1
        self.add(seq)

    # -- results --------------------------------------------------------------------------------------------
    def update(self, output: SchedulerOutput, sampled: RunnerOutput, now: float = 0.0) -> StepUpdate:
        """Advance computed counts, register newly full blocks in the prefix cache, append the sampled tokens
        and finish the sequences that are done (``checks``; ``now``: the step's end, their first-token and
        finish time)."""
        outputs: list[Sequence] = []
        first: list[Sequence] = []
        finished: list[Sequence] = []
        for chunk in output.chunks:
            seq = chunk.seq
            if seq.status is not SequenceStatus.RUNNING:
                continue
            prompt_part = max(0, min(chunk.end, seq.num_prompt_tokens) - chunk.start)
            self.stats.prefill_tokens_computed += prompt_part
            seq.num_computed_tokens = chunk.end
            bs = self.kv.block_size
            if chunk.end // bs > chunk.start // bs:  # a block filled up: register it in the prefix cache
                self.kv.cache_blocks(seq.request_id, seq.token_ids, seq.num_computed_tokens)
            if chunk.samples:
                seq.append_token(sampled.token(seq.request_id))
                if seq.first_token_time is None:
                    seq.first_token_time = now
                    first.append(seq)
                reason = self.checks.check(seq) if self.checks is not None else None
                if reason is not None:
                    self.finish(seq, reason, now)
                    finished.append(seq)
                outputs.append(seq)
        return StepUpdate(tuple(outputs), tuple(first), tuple(finished))
