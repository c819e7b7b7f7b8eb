"""Scale-out: routing a program's turns across engine replicas (docs/cluster.md). Torch-free.

- ``replicas.py``: ``ReplicaStats``, what each replica reports to the router, and ``RouteRequest``;
- ``prefix_tree.py``: which replica has served which prompt prefix (block hashes);
- ``routers.py``: the ``program`` router (program affinity, power of two choices for new programs, moves off
  an overloaded replica) and the baselines ``pow2``, ``prefix`` (Ray Serve LLM's ``PrefixCacheAffinityRouter``
  rule) and ``session`` (production-stack's consistent-hash session router).
"""
