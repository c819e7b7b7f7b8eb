"""The Continuum paper's time-to-live rule.

For a turn ending in tool ``f``, choose ``tau* = argmax over tau in {0} u support(f)`` of

    P(f returns within tau) * loss_cost  -  tau * hold_cost_per_s

``loss_cost``: engine-seconds lost if the cache is dropped (re-prefill of the context, plus the queueing delay a
re-admitted turn suffers, weighted by how much of the program remains). ``hold_cost_per_s``: the fraction of KV
memory the pin holds (holding fraction m for tau seconds costs the engine m * tau engine-seconds). ``P`` is the
tool's empirical CDF (global CDF before ~100 observations, exponential prior with mean 1 s before any).
"""

from __future__ import annotations

from tools.durations import DurationModel


def best_ttl(model: DurationModel, loss_cost_s: float, hold_cost_per_s: float) -> float:
    best_tau, best_benefit = 0.0, 0.0
    for tau in model.support():
        if tau <= 0:
            continue
        benefit = model.cdf(tau) * loss_cost_s - tau * hold_cost_per_s
        if benefit > best_benefit:
            best_tau, best_benefit = tau, benefit
    return best_tau
