"""The program layer: what the engine knows about programs, one home for it.

- ``table.py``: ``ProgramTable`` and ``ProgramState``, each program's turns, service, waits and running tool,
  and the remaining-work predictors fed by finished programs (torch-free; the policies read it);
- ``layer.py``: ``ProgramManager``, which carries a policy's decisions out on the KV cache at the scheduler's
  hooks (admission, preemption, relief, a turn's end) and before each step, and ``PolicyPriority``.

The server's per-connection view of programs (identity, turn counts, idle ends) is ``server/sessions.py``.
"""
