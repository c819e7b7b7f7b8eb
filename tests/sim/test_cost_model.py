from __future__ import annotations

import pytest

from tether.runtime.costs import H100_LLAMA31_8B, LinearCostModel, load_cost_model
from tether.runtime.sim.calibrate import fit


def test_fit_recovers_known_coefficients_from_exact_steps():
    truth = LinearCostModel(
        "t", overhead_s=3e-3, per_seq_s=1e-4, per_token_s=2e-5, per_pair_s=1e-9, per_kv_token_s=5e-7
    )
    shapes = [[(n, c)] * s for n in (1, 16, 300) for c in (0, 100, 2000) for s in (1, 4, 9)]
    fitted = fit([(chunks, truth.step_time(chunks)) for chunks in shapes], "t", "test")
    for term in ("overhead_s", "per_seq_s", "per_token_s", "per_pair_s", "per_kv_token_s"):
        assert getattr(fitted, term) == pytest.approx(getattr(truth, term), rel=1e-6)


def test_fit_drops_terms_that_would_be_negative():
    samples = [([(n, 0)], 1e-3 + 1e-5 * n) for n in (1, 10, 100, 1000)]
    fitted = fit(samples, "t", "test")
    assert (
        min(fitted.overhead_s, fitted.per_seq_s, fitted.per_token_s, fitted.per_pair_s, fitted.per_kv_token_s)
        >= 0
    )


def test_h100_model_is_memory_bound_in_decode_and_compute_bound_in_prefill():
    decode = H100_LLAMA31_8B.step_time([(1, 1000)])
    assert 6e-3 < decode < 9e-3  # ~16 GB of weights at ~2.7 TB/s, plus overhead
    prefill = H100_LLAMA31_8B.prefill_time(7600)
    assert 0.15 < prefill < 0.35
    assert H100_LLAMA31_8B.step_time([(1, 1000)], copied_blocks=100) > decode


def test_builtin_and_unknown_cost_models():
    assert load_cost_model("h100-llama3.1-8b") is H100_LLAMA31_8B
    assert load_cost_model("tiny-cpu").name == "tiny-cpu"
    with pytest.raises(ValueError, match="no-such-model"):
        load_cost_model("no-such-model")
