"""The cluster simulation: ``N`` simulated engines (the cost model, one virtual clock each) behind one router, and
the replay driver's programs (``tether replay --simulate --replicas N --router R``).

Each replica runs its steps on its own clock, in parallel with the others. The simulation is a discrete-event
loop over two kinds of events: the driver's (a program's arrival, a tool that returned) and the replicas' step
ends. A replica's step is computed when it starts, from the requests it holds then, and its outputs are
delivered when it ends; global time moves to the earliest step end, then the driver's events due by then are
sent (a turn that arrives during a step is routed at the earliest step end, as the single-engine simulation
submits it at its engine's next step), and every idle replica with work starts a step. With no step running,
time jumps to the next event or pin expiry. While a replica computes a step, the clock the driver reads is that
replica's, so turn ends and tool pauses are stamped when its step ends. With one replica the rows are exactly
the single-engine simulation's (``tests/cluster/test_sim.py``).

The router is the same code as on Ray Serve (``routers.py``); it sees each replica's queue and free KV blocks
when a turn arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tether.runtime.cluster.replicas import ReplicaStats, RouteRequest
from tether.runtime.cluster.routers import Router
from tether.runtime.replay.driver import ReplayDriver, ReplayProgramRun
from tether.runtime.sim.clock import VirtualClock

if TYPE_CHECKING:
    from tether.runtime.engine.llm_engine import LLMEngine
    from tether.runtime.engine.outputs import RequestOutput


class ClusterClock(VirtualClock):
    """The driver's clock: global time, or the clock of the replica computing a step."""

    def __init__(self) -> None:
        super().__init__()
        self.stepping: VirtualClock | None = None

    def now(self) -> float:
        return self.stepping.now() if self.stepping is not None else super().now()


@dataclass
class Replica:
    replica_id: str
    engine: LLMEngine
    clock: VirtualClock
    pending: list[RequestOutput] | None = None  # the outputs of the step it is running, due at ``clock.now()``
    blocked: bool = False  # its last step scheduled nothing: it waits for a request, a pin expiry or an end
    busy_s: float = 0.0


@dataclass
class ClusterCounters:
    turns: int = 0
    moved: int = 0  # turns sent to another replica than their program's previous turn
    homes: dict[str, str] = field(default_factory=dict)  # program -> the replica of its latest turn
    touched: dict[str, set[str]] = field(default_factory=dict)  # program -> every replica it ran on


class ClusterEngines:
    """The replicas as the driver sees one engine: ``add_request`` routes, ``end_program`` goes to every replica
    that may hold the program."""

    def __init__(
        self,
        build: Callable[[VirtualClock], LLMEngine],
        replicas: int,
        router: Router,
        clock: ClusterClock,
    ) -> None:
        self.router = router
        self.clock = clock
        self.replicas = {}
        for i in range(replicas):
            rclock = VirtualClock()
            self.replicas[f"r{i}"] = Replica(f"r{i}", build(rclock), rclock)
        self.counters = ClusterCounters()

    # -- what the driver calls ------------------------------------------------------------------------------
    def add_request(self, prompt, params=None, *, request_id=None, hints=None, arrival_time=None):
        pid = hints.program_id if hints is not None else None
        request = RouteRequest(pid, tuple(prompt))
        decision = self.router.route(request, self.stats())
        self.router.routed(request, decision.replica_id)
        if decision.moved_from is not None:
            self.replicas[decision.moved_from].engine.end_program(pid)  # release its pin there
        self._count(pid, decision.replica_id)
        replica = self.replicas[decision.replica_id]
        replica.clock.sleep_until(self.clock.now())
        seq = replica.engine.add_request(prompt, params, request_id=request_id, hints=hints)
        replica.blocked = False  # its next step starts once the driver has sent everything due now
        return seq

    def end_program(self, program_id: str) -> None:
        """The client ended the program: every replica it ran on releases what it holds of it."""
        self.router.ended(program_id)
        self.counters.homes.pop(program_id, None)
        for rid in sorted(self.counters.touched.pop(program_id, ())):
            replica = self.replicas[rid]
            replica.engine.end_program(program_id)
            replica.blocked = False
            replica.clock.sleep_until(self.clock.now())

    def trace_offset(self) -> float | None:
        return None

    # -- the event loop's side ------------------------------------------------------------------------------
    def stats(self) -> dict[str, ReplicaStats]:
        out = {}
        for rid, r in self.replicas.items():
            load = r.engine.load()
            out[rid] = ReplicaStats(rid, load.waiting + load.running, load.free_blocks, load.num_blocks)
        return out

    def next_step_end(self) -> float | None:
        ends = [r.clock.now() for r in self.replicas.values() if r.pending is not None]
        return min(ends) if ends else None

    def next_wake(self, after: float) -> float | None:
        """The earliest pin expiry of a blocked replica (its program layer has work then)."""
        times = [t for r in self.replicas.values() if r.blocked and (t := r.engine.next_timer(after)) is not None]
        return min(times) if times else None

    def wake(self, now: float) -> None:
        for r in self.replicas.values():
            if r.blocked:
                t = r.engine.next_timer(now - 1e-9)
                if t is not None and t <= now:
                    r.clock.sleep_until(now)
                    r.blocked = False

    def finish_next(self) -> list[RequestOutput]:
        """Deliver the earliest step end's outputs (global time moves there); the replica's next step starts once
        the driver has acted on them (``start_idle``)."""
        replica = min((r for r in self.replicas.values() if r.pending is not None), key=lambda r: r.clock.now())
        self.clock.sleep_until(replica.clock.now())
        outputs, replica.pending = replica.pending, None
        return outputs or []

    def start_idle(self) -> None:
        """Start a step on every replica that is idle, not blocked, and has work (after the driver sent all that
        was due: requests arriving together share a step)."""
        for replica in self.replicas.values():
            if not replica.blocked:
                self._start(replica)

    def _start(self, replica: Replica) -> None:
        """Compute the replica's next step now, if it is idle and has work."""
        if replica.pending is not None or not replica.engine.has_unfinished():
            return
        started = replica.clock.now()
        self.clock.stepping = replica.clock
        try:
            outputs = replica.engine.step()
        finally:
            self.clock.stepping = None
        if replica.engine.last_plan is None:
            replica.blocked = True
            return
        replica.busy_s += replica.clock.now() - started
        replica.pending = outputs

    def _count(self, pid: str | None, replica_id: str) -> None:
        self.counters.turns += 1
        if pid is None:
            return
        previous = self.counters.homes.get(pid)
        if previous is not None and previous != replica_id:
            self.counters.moved += 1
        self.counters.homes[pid] = replica_id
        self.counters.touched.setdefault(pid, set()).add(replica_id)


class ClusterDriver(ReplayDriver):
    """The replay driver's programs on a cluster: the same turns, hints, tools and ends, with the loop above."""

    def run_cluster(self, cluster: ClusterEngines) -> list[ReplayProgramRun]:
        self.engine = cluster  # type: ignore[assignment]
        self._offset = 0.0
        self._start_arrivals(self.clock.now())
        done = 0
        while done < len(self._runs):
            if cluster.next_step_end() is not None:  # a step ends first: its outputs, then what came during it
                for out in cluster.finish_next():
                    if out.finished:
                        ids = list(out.outputs[0].token_ids)
                        done += self._turn_done(out.request_id, ids, out.error, out.num_cached_tokens)
            elif self._events:  # every replica idle or blocked: time jumps to the next event or pin expiry
                wake = cluster.next_wake(self.clock.now())
                self.clock.sleep_until(min(self._events[0][0], wake) if wake is not None else self._events[0][0])
            else:
                wake = cluster.next_wake(self.clock.now())
                if wake is None:
                    raise RuntimeError(f"cluster replay stalled: {len(self._runs) - done} programs unfinished")
                self.clock.sleep_until(wake)
            cluster.wake(self.clock.now())
            done += self._fire_due(self.clock.now())
            cluster.start_idle()
        return self._runs
