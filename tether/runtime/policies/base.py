"""The scheduling-policy protocol: four decisions, each a small method.

- ``priority(seq, ctx)``: admission order (smaller first; the largest key is preempted first);
- ``on_turn_end(end, ctx)``: a turn ended in a tool call: free its KV, pin it for a time-to-live, or park it
  in CPU memory (with a prefetch before the tool is predicted to return);
- ``relieve(ctx, blocks_needed, requester)``: memory is short (for ``requester``, a waiting turn being
  admitted, or ``None`` for a running turn that must grow): which pins to give up (drop them, or park them);
  when the scheduler asks is the policy's ``relieve_pins`` ("eager" or "when_idle").
- ``prefetches(ctx)``: parked programs to bring back to GPU memory now.

Policies only decide; the engine carries the decisions out and counts them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tether.kvcache import KVCacheManager
    from tether.runtime.costs import CostModel
    from tether.runtime.engine.sequence import Sequence
    from tether.runtime.programs.table import ProgramTable
    from tether.tools.durations import ToolDurationStats


@dataclass(frozen=True)
class Free:
    """Give the blocks to the prefix cache (evictable in LRU order)."""


@dataclass(frozen=True)
class Pin:
    ttl_s: float


@dataclass(frozen=True)
class Park:
    """Copy the program's blocks to CPU memory now and release the GPU copies; bring them back ``prefetch_in_s``
    seconds from now (or earlier if the next turn arrives)."""

    prefetch_in_s: float


Decision = Free | Pin | Park


@dataclass(frozen=True)
class Drop:
    pin_id: str


@dataclass(frozen=True)
class ParkPin:
    pin_id: str


PressureAction = Drop | ParkPin


@dataclass(frozen=True)
class TurnEnd:
    program_id: str
    next_tool: str | None
    remaining_turns: int | None  # None: the request did not say
    context_tokens: int  # tokens whose KV would be lost
    blocks: int  # blocks a pin would hold
    now: float


@dataclass
class PolicyContext:
    """What a policy may look at; read-only by convention."""

    kv: KVCacheManager
    programs: ProgramTable
    tool_stats: ToolDurationStats
    cost_model: CostModel
    clock: Callable[[], float]
    waiting_prefill_tokens: Callable[[], int]
    waiting_turns: Callable[[], int] = field(default=lambda: 0)  # turns waiting for admission
    running_turns: Callable[[], int] = field(default=lambda: 0)  # turns admitted (prefilling or decoding)

    @property
    def now(self) -> float:
        return self.clock()

    def reprefill_s(self, tokens: int) -> float:
        return self.cost_model.prefill_time(max(1, tokens))

    def copy_s(self, blocks: int) -> float:
        """Time to copy ``blocks`` KV blocks one way between GPU and CPU memory."""
        return self.cost_model.step_time([], blocks) - self.cost_model.step_time([], 0)


class SchedulingPolicy:
    """The base of every policy: its four decisions and every option the program layer reads, each with its
    default. The defaults are vLLM's: request FCFS, free the KV at a turn's end, give up no pin, prefetch
    nothing; no CPU tier."""

    name: str = "policy"
    cpu_tier: bool = False  # needs host memory for KV blocks
    published_cpu_tier: bool = False  # the tier the policy's paper gives it (``<name>:tier=off`` restores it)
    offload_on_evict: bool = False  # write evicted GPU blocks to the CPU tier (LMCache)
    relieve_pins: str = "eager"  # "eager": relieve before any preemption; "when_idle": only when nothing else can run
    swap_on_preempt: bool = False  # a preempted turn's KV is parked in CPU memory instead of recomputed
    park_on_expiry: bool = False  # an expired pin is parked in CPU memory instead of dropped
    keep_pin_while_waiting: bool = False  # a pin does not expire while its program's next turn waits (Continuum)
    resort_each_step: bool = False  # priorities change with time: the queues are re-sorted before each step

    def priority(self, seq: Sequence, ctx: PolicyContext) -> tuple:
        return (seq.arrival_time, seq.seq_index)

    def on_turn_end(self, end: TurnEnd, ctx: PolicyContext) -> Decision:
        return Free()

    def relieve(
        self, ctx: PolicyContext, blocks_needed: int, requester: Sequence | None = None
    ) -> list[PressureAction]:
        return []

    def prefetches(self, ctx: PolicyContext) -> list[str]:
        return []

    def swap_budget(self, ctx: PolicyContext) -> tuple[int, int] | None:
        """Blocks that may be copied (in, out) per step; ``None``: no limit (InferCept sets one)."""
        return None
