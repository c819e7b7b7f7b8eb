"""Admission order: which waiting request runs next, and which running one yields under memory pressure.

The scheduler keeps its queues sorted by ``policy.priority(seq)`` (smaller runs first) and preempts from the
largest key. Request FCFS lives here; the program-level orders (least attained service, pinned programs first,
Gittins indices) are the policies' ``priority`` (``tether/runtime/policies/``), adapted by ``PolicyPriority``
(``tether/runtime/programs/layer.py``).
"""

from __future__ import annotations

from typing import Protocol

from tether.runtime.engine.sequence import Sequence


class AdmissionPolicy(Protocol):
    name: str

    def priority(self, seq: Sequence) -> tuple:
        """Sort key; smaller is admitted first and preempted last. Must be stable for a waiting request."""
        ...


class RequestFCFS:
    """First come, first served by request arrival; a preempted request keeps its arrival time, so it goes
    back to the head of the queue."""

    name = "fcfs"

    def priority(self, seq: Sequence) -> tuple:
        return (seq.arrival_time, seq.seq_index)
