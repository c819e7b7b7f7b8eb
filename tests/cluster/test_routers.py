"""The routers' rules on scripted replica stats (tether/runtime/cluster/routers.py)."""

from __future__ import annotations

import pytest

from tether.runtime.cluster.prefix_tree import PrefixIndex, block_hashes
from tether.runtime.cluster.replicas import ReplicaStats, RouteDecision, RouteRequest
from tether.runtime.cluster.routers import NoReplicaError, ProgramRouter, get_router


def replicas(*queues: int, free: int = 100) -> dict[str, ReplicaStats]:
    return {f"r{i}": ReplicaStats(f"r{i}", q, free, 100) for i, q in enumerate(queues)}


def send(router, request: RouteRequest, reps) -> RouteDecision:
    decision = router.route(request, reps)
    router.routed(request, decision.replica_id)
    return decision


def test_pow2_takes_the_shorter_queue_of_two_drawn():
    router = get_router("pow2", seed=0)
    reps = replicas(5, 0)  # two replicas: both are always drawn
    assert {router.route(RouteRequest("p"), reps).replica_id for _ in range(20)} == {"r1"}
    with pytest.raises(NoReplicaError):
        router.route(RouteRequest("p"), {})


def test_program_router_keeps_a_program_on_its_replica_until_it_is_overloaded():
    router = ProgramRouter(seed=0, overload_factor=2.0, overload_slack=4)
    reps = replicas(0, 0, 0, 0)
    first = send(router, RouteRequest("p"), reps)
    assert first.moved_from is None
    home = first.replica_id
    # its replica is now the busiest (5 against a mean of 1.25), but not past max(2 x 1.25, 1.25 + 4): it stays
    busy = {**reps, home: ReplicaStats(home, 5, 10, 100)}
    assert send(router, RouteRequest("p"), busy) == RouteDecision(home)
    # past both: it moves, and the old replica is named so it releases the pin
    overloaded = {**reps, home: ReplicaStats(home, 9, 10, 100)}
    moved = send(router, RouteRequest("p"), overloaded)
    assert moved.moved_from == home and moved.replica_id != home and router.moves == 1
    assert send(router, RouteRequest("p"), reps) == RouteDecision(moved.replica_id)  # its new home


def test_program_router_forgets_a_dead_replica_and_adopts_reported_programs():
    router = ProgramRouter(seed=1)
    reps = replicas(0, 0, 0)
    home = send(router, RouteRequest("p"), reps).replica_id
    router.replica_died(home)
    alive = {r: s for r, s in reps.items() if r != home}
    assert send(router, RouteRequest("p"), alive).replica_id in alive  # re-prefilled elsewhere
    fresh = ProgramRouter(seed=1)
    fresh.held({"r2": ReplicaStats("r2", programs=frozenset({"q"})), "r0": ReplicaStats("r0")})
    assert fresh.route(RouteRequest("q"), replicas(0, 0, 0)) == RouteDecision("r2")


def test_prefix_router_follows_the_longest_served_prefix_while_the_load_is_balanced():
    router = get_router("prefix", seed=0)
    reps = replicas(0, 0, 0)
    shared = tuple(range(64))
    router.routed(RouteRequest("a", shared + (900,) * 16), "r2")
    router.routed(RouteRequest("b", shared[:16] + (7,) * 48), "r1")
    assert router.route(RouteRequest("c", shared + (5,) * 32), reps) == RouteDecision("r2")
    # under 10% matched: the replica with the fewest prefix entries (r0 served nothing)
    assert router.route(RouteRequest("d", tuple(range(1000, 1320))), reps) == RouteDecision("r0")
    # imbalanced past 10: power of two choices, whatever the prefix says
    skewed = {**reps, "r2": ReplicaStats("r2", 30, 100, 100)}
    assert {router.route(RouteRequest("c", shared), skewed).replica_id for _ in range(30)} <= {"r0", "r1"}


def test_session_router_is_a_consistent_hash_ring():
    router = get_router("session")
    reps = replicas(*[0] * 8)
    before = {f"p{i}": router.route(RouteRequest(f"p{i}"), reps).replica_id for i in range(400)}
    assert len(set(before.values())) == 8  # spread over every replica
    loaded = {r: ReplicaStats(r, 50) for r in reps}
    assert all(router.route(RouteRequest(p), loaded).replica_id == r for p, r in before.items())  # load-blind
    del reps["r3"]
    after = {p: router.route(RouteRequest(p), reps).replica_id for p in before}
    assert {p for p in before if before[p] != after[p]} == {p for p in before if before[p] == "r3"}


def test_prefix_index_matches_whole_blocks():
    index = PrefixIndex()
    index.insert(tuple(range(40)), "a")  # two whole blocks, 8 tokens left over
    assert len(block_hashes(tuple(range(40)))) == 2
    assert index.match(tuple(range(32)) + (99,) * 16, ["a", "b"]) == (32, ["a"])
    assert index.match((1,) * 32, ["a", "b"]) == (0, ["a", "b"])
    assert index.smallest(["a", "b"]) == ["b"]
    index.remove("a")
    assert index.match(tuple(range(32)), ["a", "b"]) == (0, ["a", "b"])


def test_unknown_router_is_named():
    with pytest.raises(ValueError, match="unknown router 'ring'; known: program, pow2, prefix, session"):
        get_router("ring")


def test_bench_router_times_each_router(tmp_path, capsys):
    import json

    from tether.cli import main

    out = tmp_path / "r.json"
    args = ["bench", "router", "--replicas", "4", "--programs", "50", "--requests", "200", "--prompt-tokens", "64"]
    assert main([*args, "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["routers"]
    assert [r["router"] for r in rows] == ["program", "pow2", "prefix", "session"]
    assert all(r["requests"] == 200 and 0 < r["median_us"] <= r["p99_us"] for r in rows)
    assert main([*args, "--routers", "program,ring"]) == 2
    assert "unknown router 'ring'" in capsys.readouterr().err
