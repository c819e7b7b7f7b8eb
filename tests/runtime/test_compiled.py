"""The compiled forward (tether/runtime/engine/compiled.py): the CPU default, a cached graph, the same greedy tokens as
eager, no leaked blocks."""

from __future__ import annotations

import pytest
import torch

from tether.runtime import LLM, SamplingParams
from tether.runtime.engine.compiled import EAGER_ENV, CompiledForward, should_compile
from tether.runtime.engine.errors import ModelLoadError
from tether.runtime.engine.models.linear import DenseLinear, PackedLinear
from tether.runtime.engine.models.loader import load_model

LINEARS = (DenseLinear, PackedLinear)

PROMPTS = [[5, 6, 7, 8, 9, 10], [11, 12, 13] * 20, [1, 2], list(range(40, 140))]


def test_compiling_is_the_cpu_default_unless_eager_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.delenv(EAGER_ENV)
    assert should_compile(cpu, None) and should_compile(cpu, False)
    assert not should_compile(cpu, True)
    monkeypatch.setenv(EAGER_ENV, "1")
    assert not should_compile(cpu, None) and should_compile(cpu, False)  # the variable changes the default only
    assert not should_compile(cuda, False) and not should_compile(cuda, None)  # CUDA graphs are not built yet


def test_the_suite_runs_engines_eager() -> None:
    llm = LLM("tiny", num_kv_blocks=32)
    assert llm.engine.runner.compiled is None and llm.engine.backend.compile_s == 0.0


def test_the_ops_refuse_a_forward_that_is_gone_or_a_call_outside_a_step() -> None:
    q = torch.zeros(1, 2, 4)
    with pytest.raises(RuntimeError, match="compiled forward 1000000000, which no longer exists"):
        torch.ops.tether.paged_attention(q, q, q, 0, 10**9)
    forward = CompiledForward(load_model("tiny").model)
    with pytest.raises(RuntimeError, match="outside a CompiledForward step"):
        torch.ops.tether.paged_attention(q, q, q, 0, forward.handle)


def test_linears_become_ops_that_run_the_models_own_and_release_puts_them_back() -> None:
    model = load_model("tiny").model
    before = {(id(m), n): v for m in model.modules() for n, v in vars(m).items() if isinstance(v, LINEARS)}
    forward = CompiledForward(model)
    assert [(id(r.module), r.name) for r in forward.linears] == list(before)  # module order: same in any process
    attention = model.model.layers[0].self_attn
    x = torch.randn(3, model.config.hidden_size)
    assert torch.equal(attention.qkv(x), before[(id(attention), "qkv")](x))  # through tether::linear
    assert not any(isinstance(v, LINEARS) for m in model.modules() for v in vars(m).values())
    forward.release()
    assert {(id(m), n): v for m in model.modules() for n, v in vars(m).items() if isinstance(v, LINEARS)} == before


def test_a_failed_compile_falls_back_to_eager_by_default_and_fails_when_asked(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self, device):
        raise RuntimeError("no C++ compiler")

    monkeypatch.delenv(EAGER_ENV)
    monkeypatch.setattr(CompiledForward, "warm_up", broken)
    llm = LLM("tiny", num_kv_blocks=32)
    assert llm.engine.runner.compiled is None
    assert "compiling the forward failed, running eager" in caplog.text and "no C++ compiler" in caplog.text
    assert isinstance(llm.engine.backend.model.model.layers[0].mlp.down, LINEARS)  # its own linears, back
    out = llm.generate([[5, 6, 7]], SamplingParams(temperature=0.0, max_tokens=3, ignore_eos=True))
    assert len(out[0].outputs[0].token_ids) == 3
    llm.engine.check_integrity()
    with pytest.raises(ModelLoadError, match="tiny: compiling the forward failed: no C\\+\\+ compiler"):
        LLM("tiny", num_kv_blocks=32, enforce_eager=False)


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


@pytest.mark.slow
def test_a_later_start_takes_its_graphs_from_the_cache(tmp_path) -> None:
    """Two processes with one ``TETHER_HOME``: the first compiles both graphs, the second finds both in
    ``$TETHER_HOME/compile`` (inductor's FX-graph cache: no weight is a constant of the graph)."""
    import json
    import os
    import subprocess
    import sys

    script = (
        "import json\n"
        "from torch._dynamo.utils import counters\n"
        "from tether.runtime import LLM\n"
        "llm = LLM('tiny', num_kv_blocks=32, enforce_eager=False)\n"
        "print(json.dumps({k: counters['inductor'][k] for k in ('fxgraph_cache_hit', 'fxgraph_cache_miss')}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
    env["TETHER_HOME"] = str(tmp_path)

    def start() -> dict:
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    assert start() == {"fxgraph_cache_hit": 0, "fxgraph_cache_miss": 2}
    assert start() == {"fxgraph_cache_hit": 2, "fxgraph_cache_miss": 0}
    assert (tmp_path / "compile").is_dir()
