"""``<baseline>:tier=on|off`` (tether/runtime/policies/tier.py): every baseline may use the CPU tier it is given."""

from __future__ import annotations

import pytest

from tests.replay.synthetic import busy_programs
from tether.runtime.costs import H100_LLAMA31_8B
from tether.runtime.engine.config import EngineConfig
from tether.runtime.policies import get_policy
from tether.runtime.replay.runner import ReplaySettings, run_replay


@pytest.mark.parametrize("name", ["continuum", "continuum-fixed", "autellix", "infercept", "lmcache"])
def test_the_baselines_offload_on_evict_by_default(name: str) -> None:
    policy = get_policy(name)
    assert (policy.name, policy.cpu_tier, policy.offload_on_evict) == (name, True, True)


@pytest.mark.parametrize(
    ("name", "cpu_tier"),
    [("continuum", False), ("continuum-fixed", False), ("autellix", False), ("infercept", True)],
)
def test_tier_off_is_the_published_form(name: str, cpu_tier: bool) -> None:
    policy = get_policy(f"{name}:tier=off")
    assert (policy.name, policy.cpu_tier, policy.offload_on_evict) == (f"{name}:tier=off", cpu_tier, False)
    assert get_policy(f"{name}:tier=on").offload_on_evict
    assert get_policy(name).offload_on_evict  # the class is untouched


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("continuum:tier=maybe", "policy 'continuum:tier=maybe': tier must be on or off, got 'maybe'"),
        ("autellix:ttl=3", "policy 'autellix:ttl=3': unknown option 'ttl=3'"),
        ("infercept:tier", "policy 'infercept:tier': unknown option 'tier'"),
        ("vllm:tier=on", "unknown policy 'vllm:tier=on'"),
    ],
)
def test_a_bad_tier_option_names_the_policy_and_the_part(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        get_policy(name)


def test_continuum_writes_evicted_blocks_to_the_tier_and_reads_them_back_unless_tier_is_off() -> None:
    engine = EngineConfig(model="tiny", num_kv_blocks=96, max_num_batched_tokens=512, num_cpu_kv_blocks=192)
    settings = ReplaySettings(
        ("continuum", "continuum:tier=off"), engine, rate=3.0, seed=1, simulate=True, cost_model=H100_LLAMA31_8B
    )
    tiered, off = run_replay(settings, busy_programs(40))
    assert tiered["offloaded_blocks"] > 0 and off["offloaded_blocks"] == 0
    assert tiered["prefill_tokens_computed"] < off["prefill_tokens_computed"]  # reloads instead of prefills
    assert tiered["kv_leaked_blocks"] == off["kv_leaked_blocks"] == 0
