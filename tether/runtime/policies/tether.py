"""``tether``: Continuum's idea, with what a server really knows. The rule (docs/scheduling.md):

1. Admission: programs whose KV is resident (pinned on the GPU) first; then the highest Gittins index of the
   program's remaining turns, learned from finished programs (``RemainingWorkPredictor``), or ``1 / (r + 1)`` where
   a static DAG really fixes the ``r`` remaining calls; then least attained service; then program arrival.
2. Turn end: keep the KV (pin it), with no time-to-live: holding costs nothing until memory is short, and the
   pressure rule below decides lazily. The last turn frees. (``keep=ttl``: a TTL of the tool's p95 instead.)
3. Memory pressure (tether/runtime/policies/keep.py): price memory at the waiting queue's shadow price (waiting turns
   per block short) and give up, least valuable first, the pins worth less: the re-prefill seconds a pin saves
   per block per second it is expected to be held (the median of its tool's remaining time given how long it has
   run). Each is parked in CPU memory when it fits, making room there by dropping parked programs predicted back
   later, and dropped only when neither works. A running turn that must grow takes whatever it needs.
4. Expiry (``keep=ttl``, and a 600 s horizon otherwise): a pin that outlives it is parked rather than dropped when
   the CPU tier has room.
5. Preemption swaps the victim's KV to CPU memory instead of recomputing it.
6. Offload: blocks the LRU evicts that no pin holds are written to the CPU tier (LMCache's rule, as every
   baseline's tier does).

Prefetch showed no measured gain (docs/benchmarks.md) and is off by default, kept as a named option:
``prefetch=on`` (a parked program's blocks come back to GPU memory once its tool is predicted to return, the GPU
has room without giving up another pin, and no turn waits for admission).

Each part can be switched by name for ablations (``TetherOptions``): ``tether:order=fcfs``, ``tether:pins=off``,
``tether:park=off``, ``tether:prefetch=on``, ``tether:swap=off``, ``tether:victim=residual``,
``tether:displace=off``, ``tether:calm=off``, ``tether:offload=off``, ``tether:gate=on``, ``tether:groups=on``,
``tether:relieve=when_idle``, ``tether:static=off``, ``tether:keep=ttl`` (several joined by ``:``). The policy
reads no hint that a server would not have (``ProgramHints``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from tether.runtime.policies.base import Decision, Drop, Free, Pin, PolicyContext, PressureAction, TurnEnd
from tether.runtime.policies.keep import VICTIMS, give_up, shadow_price
from tether.runtime.policies.vllm import VLLMPolicy

TTL_QUANTILE = 0.95
MIN_TTL_S = 1.0
ORDERS = ("gittins", "gittins-mem", "gittins-tokens", "las", "fcfs")
RELIEVE = ("eager", "when_idle")
KEEPS = ("ttl", "value")
PIN_HORIZON_S = 600.0  # keep=value: pins end by value under pressure, or after this (a program that never returns)


@dataclass(frozen=True)
class TetherOptions:
    # gittins: Gittins index of the learned distribution of total turns; gittins-mem: the same per KV token the
    # turn needs (completions per unit of memory-time); gittins-tokens: the index over tokens computed (program
    # service); las: least attained service (tokens); fcfs: program arrival
    order: str = "gittins"
    pins: bool = True  # keep KV across tool calls
    park: bool = True  # under pressure or on expiry, move pins to CPU memory instead of dropping them
    # bring parked programs back before their tool is predicted to return (off: no measured gain, issue 22)
    prefetch: bool = False
    swap: bool = True  # preemption parks the victim's KV instead of recomputing it
    offload: bool = True  # also write LRU-evicted unpinned blocks to the CPU tier (LMCache's rule)
    victim: str = "value"  # which pins leave the GPU first under pressure (tether/runtime/policies/keep.py)
    displace: bool = True  # drop a parked pin predicted back later to make room for one predicted sooner
    gate: bool = False  # a waiting turn may take only the GPU pins of programs ranked after its own
    calm: bool = True  # prefetch only while no turn waits for admission (no memory taken from a waiting turn)
    # a request whose prefix group has a request admitted counts as resident (off: it cost 3.6% on compiled programs)
    groups: bool = False
    static: bool = True  # rank by the remaining turns a static DAG fixes, where a request says them
    # when pins are given up: eager (before preempting a running turn or stalling an admission) or when_idle
    # (Continuum's: only when nothing else can run)
    relieve: str = "eager"
    # value: no time-to-live; under pressure a pin is given up only while it is worth less (re-prefill saved per
    # block-second held) than the queue's shadow price of memory; ttl: pin for the tool's p95, then park
    keep: str = "value"

    @staticmethod
    def parse(spec: str) -> TetherOptions:
        """``order=las:park=off`` -> options; unknown names and values are named in the error."""
        opts = TetherOptions()
        known = [f.name for f in fields(TetherOptions)]
        for part in filter(None, spec.split(":")):
            key, _, value = part.partition("=")
            if key not in known:
                raise ValueError(f"tether option {key!r} unknown; known: {', '.join(known)}")
            choices = {"order": ORDERS, "victim": VICTIMS, "relieve": RELIEVE, "keep": KEEPS}.get(key)
            if choices is not None:
                if value not in choices:
                    raise ValueError(f"tether {key} {value!r} unknown; known: {', '.join(choices)}")
                opts = replace(opts, **{key: value})
            elif value in ("on", "off"):
                opts = replace(opts, **{key: value == "on"})
            else:
                raise ValueError(f"tether option {key}={value!r}: expected on or off")
        return opts


class TetherPolicy(VLLMPolicy):
    name = "tether"
    cpu_tier = True

    def __init__(self, options: TetherOptions | None = None, name: str | None = None) -> None:
        self.options = options or TetherOptions()
        self.name = name or "tether"
        self.park_on_expiry = self.options.park
        self.swap_on_preempt = self.options.swap
        self.offload_on_evict = self.options.offload
        self.relieve_pins = self.options.relieve

    def priority(self, seq, ctx: PolicyContext) -> tuple:
        """(not resident, program rank, submission order): smaller first."""
        pid = seq.hints.program_id
        state = ctx.programs.get(pid) if pid else None
        if state is None:
            return (1, (0.0, 0, seq.arrival_time), seq.seq_index)
        pinned = ctx.kv.has_pin(pid) and not ctx.kv.pins[pid].parked
        grouped = self.options.groups and seq.hints.prefix_group in state.prefix_groups
        resident = 0 if pinned or grouped else 1
        remaining = seq.hints.remaining_turns if self.options.static else None
        return (resident, self.rank(state, remaining, seq.num_tokens, ctx), seq.seq_index)

    def rank(self, state, remaining_turns: int | None, context_tokens: int, ctx: PolicyContext) -> tuple:
        """A program's place in the order (smaller first): (-index, attained service, arrival).
        ``remaining_turns``: known only from a static DAG (or ``--hints oracle``), else None."""
        attained = state.attained_tokens
        order = self.options.order
        if order == "fcfs":
            return (0.0, 0, state.arrival)
        if order == "las":
            return (0.0, attained, state.arrival)
        if order == "gittins-tokens":
            if remaining_turns is not None:
                index = 1.0 / ((remaining_turns + 1) * ctx.programs.tokens_per_turn(state))
            else:
                index = ctx.programs.service.gittins(attained)
        else:
            if remaining_turns is not None:
                index = 1.0 / (remaining_turns + 1)  # this turn and the ones after it: a known size
            else:
                index = ctx.programs.turns.gittins(max(0, state.turns_seen - 1))
            if order == "gittins-mem":
                index /= max(1, context_tokens)
        return (-index, attained, state.arrival)

    def on_turn_end(self, end: TurnEnd, ctx: PolicyContext) -> Decision:
        if end.remaining_turns == 0 or not self.options.pins:
            return Free()
        if self.options.keep == "value":
            return Pin(PIN_HORIZON_S)
        model = ctx.tool_stats.model_for(end.next_tool)
        return Pin(max(MIN_TTL_S, model.quantile(TTL_QUANTILE)))

    def relieve(self, ctx: PolicyContext, blocks_needed: int, requester=None) -> list[PressureAction]:
        eligible = None
        if self.options.gate and requester is not None:
            eligible = self._ranked_below(ctx, requester)
        price = shadow_price(ctx, blocks_needed, requester) if self.options.keep == "value" else math.inf
        actions = give_up(ctx, blocks_needed, self.options.victim, self.options.displace, eligible, price)
        if not self.options.park:
            actions = [Drop(a.pin_id) for a in actions]
        return actions

    def _ranked_below(self, ctx: PolicyContext, requester) -> set[str]:
        """Programs holding GPU pins that rank after the requester's program: the only ones whose KV a waiting
        turn may take (memory goes to programs in the order turns are admitted)."""
        pid = requester.hints.program_id
        state = ctx.programs.get(pid) if pid else None
        if state is None:
            return set(ctx.kv.pins)
        remaining = requester.hints.remaining_turns if self.options.static else None
        mine = self.rank(state, remaining, requester.num_tokens, ctx)
        below = set()
        for other, info in ctx.kv.pins.items():
            other_state = ctx.programs.get(other)
            if info.parked or other_state is None or other == pid:
                continue
            tokens = info.num_blocks * ctx.kv.block_size
            if self.rank(other_state, None, tokens, ctx) > mine:
                below.add(other)
        return below

    def prefetches(self, ctx: PolicyContext) -> list[str]:
        if not self.options.prefetch or (self.options.calm and ctx.waiting_prefill_tokens() > 0):
            return []
        now = ctx.now
        due = []
        for pid, info in ctx.kv.pins.items():
            state = ctx.programs.get(pid)
            if not info.parked or state is None or state.predicted_return is None:
                continue
            if now >= state.predicted_return - ctx.copy_s(len(info.cpu_block_ids)):
                due.append(pid)
        return due
