"""``tether calibrate``: fit a ``LinearCostModel`` to this machine's real engine steps.

It runs a mix of prompts (lengths 16..2048, some sharing prefixes so steps extend cached context) and decode
batches of 1..32 on the real engine, times every step with its shape, and fits the step-time terms by least
squares of relative error with non-negative coefficients (active set: a term fitted negative is dropped and the
rest refitted)."""

from __future__ import annotations

import random
import time

import numpy as np

from tether.runtime.costs import LinearCostModel, step_features
from tether.runtime.engine.config import EngineConfig
from tether.runtime.engine.sampling_params import SamplingParams

TERMS = ("overhead_s", "per_seq_s", "per_token_s", "per_pair_s", "per_kv_token_s")


def measure_steps(
    config: EngineConfig, seed: int = 0, rounds: int = 6
) -> list[tuple[list[tuple[int, int]], float]]:
    from tether.runtime.engine.builder import build_engine

    engine = build_engine(config)
    rng = random.Random(seed)
    samples: list[tuple[list[tuple[int, int]], float]] = []
    base = [rng.randrange(256) for _ in range(2048)]
    for r in range(rounds):
        batch = [1, 4, 8, 16, 32, 2][r % 6]
        for i in range(batch):
            n = rng.choice([16, 64, 256, 512, 1024, 2048])
            shared = rng.choice([0, 0, n // 2])  # some prompts extend a cached prefix
            prompt = base[:shared] + [rng.randrange(256) for _ in range(n - shared)]
            engine.add_request(
                prompt,
                SamplingParams(temperature=0, max_tokens=rng.choice([4, 16, 32]), ignore_eos=True),
                request_id=f"cal-{r}-{i}",
            )
        while engine.has_unfinished():
            t0 = time.perf_counter()
            engine.step()
            dt = time.perf_counter() - t0
            plan = engine.last_plan
            samples.append(([(c.num_new_tokens, c.start) for c in plan.chunks], dt))
    return samples[3:]  # the first steps warm up the allocator and kernels


def fit(samples: list[tuple[list[tuple[int, int]], float]], name: str, source: str) -> LinearCostModel:
    y = np.array([dt for _, dt in samples])  # (N,)
    # Rows scaled by 1/y: least squares on relative error, so decode steps (ms) weigh as much as prefills (s).
    x = np.array([[1.0, *step_features(chunks)] for chunks, _ in samples]) / y[:, None]  # (N, 5)
    y = np.ones_like(y)
    active = list(range(x.shape[1]))
    coef = np.zeros(x.shape[1])
    while active:
        sol, *_ = np.linalg.lstsq(x[:, active], y, rcond=None)
        if (sol >= 0).all():
            coef[:] = 0
            coef[active] = sol
            break
        active.pop(int(np.argmin(sol)))
    return LinearCostModel(name=name, source=source, **dict(zip(TERMS, coef.tolist())))


def calibrate(config: EngineConfig, name: str, seed: int = 0) -> tuple[LinearCostModel, float]:
    """The fitted model and its median relative error on the measured steps."""
    samples = measure_steps(config, seed)
    model = fit(
        samples,
        name,
        f"tether calibrate --model {config.model} --device {config.device} ({len(samples)} steps)",
    )
    errors = sorted(abs(model.step_time(c) - dt) / dt for c, dt in samples if dt > 0)
    return model, errors[len(errors) // 2]
