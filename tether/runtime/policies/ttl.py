"""The Continuum paper's time-to-live rule.

For a turn ending in tool ``f``, choose ``tau* = argmax over tau in {0} u support(f)`` of

    P(f returns within tau) * benefit_s  -  tau,        benefit_s = T * eta + reload(context)

``T``: the sliding average of the queueing delay seen after eviction; ``eta``: the correlation term;
``reload``: the prefill time of the context (docs/scheduling.md says where each comes from). ``P`` is the tool's
empirical CDF (the global CDF before 100 observations of the tool, an exponential prior with mean 1 s before any).
Ties go to the smallest ``tau``.
"""

from __future__ import annotations

from tether.tools.durations import DurationModel


def best_ttl(model: DurationModel, benefit_s: float) -> float:
    best_tau, best_value = 0.0, model.cdf(0.0) * benefit_s
    for tau in model.support():
        if tau <= 0:
            continue
        value = model.cdf(tau) * benefit_s - tau
        if value > best_value:
            best_tau, best_value = tau, value
    return best_tau
