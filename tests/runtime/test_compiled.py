"""The compiled forward (runtime/engine/compiled.py): opt-in, the same greedy tokens as eager, no leaked blocks."""

from __future__ import annotations

import pytest
import torch

from tether.runtime import LLM, SamplingParams
from tether.runtime.engine.compiled import should_compile

PROMPTS = [[5, 6, 7, 8, 9, 10], [11, 12, 13] * 20, [1, 2], list(range(40, 140))]


def test_compiling_is_opt_in_and_cpu_only() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert should_compile(cpu, False)
    assert not should_compile(cpu, None) and not should_compile(cpu, True)
    assert not should_compile(cuda, False)  # CUDA graphs are not built yet: eager there


def test_the_default_engine_runs_eager() -> None:
    llm = LLM("tiny", num_kv_blocks=32)
    assert llm.engine.runner.compiled is None and llm.engine.backend.compile_s == 0.0


def test_the_paged_attention_op_refuses_a_call_outside_a_step() -> None:
    import tether.runtime.engine.compiled  # noqa: F401 - defines tether::paged_attention

    q = torch.zeros(1, 2, 4)
    with pytest.raises(RuntimeError, match="outside a CompiledForward step"):
        torch.ops.tether.paged_attention(q, q, q, 0, 10**9)


@pytest.mark.slow
def test_compiled_greedy_tokens_equal_eager() -> None:
    params = SamplingParams(temperature=0.0, max_tokens=24, ignore_eos=True)
    compiled = LLM("tiny", num_kv_blocks=64, max_num_batched_tokens=64, enforce_eager=False)
    eager = LLM("tiny", num_kv_blocks=64, max_num_batched_tokens=64)
    assert compiled.engine.runner.compiled is not None and compiled.engine.backend.compile_s > 0
    # a 100-token prompt runs in two chunks of 64 (one without a sampled row), the others decode together
    got = [o.outputs[0].token_ids for o in compiled.generate(PROMPTS, params)]
    want = [o.outputs[0].token_ids for o in eager.generate(PROMPTS, params)]
    assert got == want
    assert [len(t) for t in got] == [24] * len(PROMPTS)
    compiled.engine.check_integrity()
    eager.engine.check_integrity()
