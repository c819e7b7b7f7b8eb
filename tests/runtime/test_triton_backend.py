"""The Triton attention backend (kernels run in the Triton interpreter on CPU) against the torch backend: the
batch plan that finds shared prefixes, one layer's attention on a mixed batch, and the tiny model end to end
with parallel requests on a cached prefix (same greedy tokens, logits within tolerance)."""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before kernels import triton (it decides at decoration)

import random  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from tests.runtime.attention_batch import step_batch  # noqa: E402
from tether.kernels import torch_ops  # noqa: E402
from tether.runtime import LLM, SamplingParams  # noqa: E402
from tether.runtime.engine.attention import AttentionMetadata, TorchAttentionBackend, resolve_backend_name  # noqa: E402
from tether.runtime.engine.attention.triton_backend import PrefixGroup, find_prefix_groups  # noqa: E402

INTERPRETING = os.environ["TRITON_INTERPRET"] == "1"
DEVICE = "cpu" if INTERPRETING else "cuda"
needs_kernels = pytest.mark.skipif(
    not INTERPRETING and not torch.cuda.is_available(), reason="compiled Triton needs CUDA"
)


def test_auto_resolves_to_triton_on_cuda_and_torch_on_cpu():
    assert resolve_backend_name("auto", torch.device("cpu")) == "torch"
    assert resolve_backend_name("auto", torch.device("cuda"), self_check=lambda d: True) == "triton"
    assert resolve_backend_name("torch", torch.device("cuda")) == "torch"
    assert resolve_backend_name("triton", torch.device("cpu")) == "triton"


def test_prefix_groups_need_four_sequences_and_whole_cached_pages():
    bs = 4
    # seqs 0-3 share pages 7, 8 (seq 3 has only 5 tokens before its first query: 1 whole page); 4 and 5 start
    # on page 7 too but 4 has its first query inside page 7 (not cached before it); 6 is alone on page 9.
    tables = [[7, 8, 1], [7, 8, 2], [7, 8, 3, 4], [7, 8], [7, 5], [7, 8, 6], [9]]
    q_lens = [1, 1, 3, 2, 4, 1, 1]
    kv_lens = [9, 10, 13, 7, 5, 9, 2]
    groups = find_prefix_groups(tables, q_lens, kv_lens, bs)
    assert groups == [PrefixGroup(members=(0, 1, 2, 3, 5), num_blocks=1)]
    assert find_prefix_groups(tables[:3] + tables[5:6], [1, 1, 3, 1], [9, 10, 13, 9], bs) == [
        PrefixGroup(members=(0, 1, 2, 3), num_blocks=2)
    ]
    assert find_prefix_groups(tables[:3], q_lens[:3], kv_lens[:3], bs) == []  # three are too few


def mixed_batch(hq: int, hkv: int):
    """Sequences 1, 2, 4, 5 share a 2-page prefix (interleaved with two unrelated ones: the plan permutes the
    queries); decodes and extends mixed."""
    g = torch.Generator().manual_seed(0)
    bs, d, nblocks = 4, 16, 40
    perm = torch.randperm(nblocks, generator=g).tolist()
    shared = [perm.pop(), perm.pop()]
    shapes = [(9, 1, False), (9, 1, True), (12, 3, True), (0, 6, False), (8, 1, True), (10, 5, True)]
    tables = []
    for cached, new, shares in shapes:
        own_start = 2 if shares else 0
        tables.append(
            (shared if shares else [])
            + [perm.pop() for _ in range((cached + new + bs - 1) // bs - own_start)]
        )
    steps = [(cached, new) for cached, new, _ in shapes]
    return step_batch(tables, steps, hq=hq, hkv=hkv, d=d, num_blocks=nblocks, block_size=bs, generator=g)


@needs_kernels
@pytest.mark.parametrize(("hq", "hkv"), [(4, 4), (4, 1)])
def test_one_layer_on_a_mixed_batch_matches_torch_backend(hq, hkv):
    from tether.runtime.engine.attention.triton_backend import TritonAttentionBackend

    q, k, v, k_cache, v_cache, meta = (
        x.to(DEVICE) if isinstance(x, torch.Tensor) else x for x in mixed_batch(hq, hkv)
    )
    meta = AttentionMetadata(*(getattr(meta, f).to(DEVICE) for f in ("slot_mapping", "block_table",
                             "cu_seqlens_q", "kv_lens")), max_q_len=meta.max_q_len)  # fmt: skip
    kc, vc = k_cache.clone(), v_cache.clone()
    backend = TritonAttentionBackend()
    out = backend.forward(q, k, v, k_cache, v_cache, meta)
    plan = backend._plan_for(meta, k_cache.shape[1])
    assert plan is not None and plan.groups == (PrefixGroup(members=(1, 2, 4, 5), num_blocks=2),)
    assert plan.token_order is not None  # the group is not contiguous in the batch
    expected = TorchAttentionBackend().forward(q, k, v, kc, vc, meta)
    torch.testing.assert_close(out, expected, atol=2e-5, rtol=2e-5)
    assert torch.equal(k_cache, kc) and torch.equal(v_cache, vc)
    reference_o, _ = torch_ops.paged_attention(q, kc, vc, meta.block_table, meta.cu_seqlens_q, meta.kv_lens)
    torch.testing.assert_close(out, reference_o, atol=2e-5, rtol=2e-5)
    assert backend.forward(q, k, v, k_cache, v_cache, meta) is not None and backend.cascade_steps == 1


def run_branches(backend: str) -> tuple[list[tuple[int, ...]], list[torch.Tensor], LLM]:
    """A cached 40-token prefix, then five branches on it (two whole pages shared), three greedy tokens."""
    llm = LLM("tiny", num_kv_blocks=64, attention_backend=backend, device=DEVICE, dtype="float32")
    logits: list[torch.Tensor] = []
    forward = llm.engine.runner.forward_logits

    def recording(inputs):
        out = forward(inputs)
        logits.append(out.float().cpu())
        return out

    llm.engine.runner.forward_logits = recording
    rng = random.Random(0)
    prefix = [rng.randrange(256) for _ in range(40)]
    params = SamplingParams(temperature=0.0, max_tokens=3, ignore_eos=True)
    llm.generate([prefix + [1]], SamplingParams(temperature=0.0, max_tokens=1, ignore_eos=True))
    outs = llm.generate([prefix + [rng.randrange(256) for _ in range(2 + i)] for i in range(5)], params)
    assert all(o.num_cached_tokens == 32 for o in outs)
    return [o.outputs[0].token_ids for o in outs], logits, llm


@needs_kernels
def test_tiny_model_branches_on_a_cached_prefix_match_torch_backend():
    tokens, logits, llm = run_branches("triton")
    expected_tokens, expected_logits, _ = run_branches("torch")
    assert llm.engine.runner.backend.name == "triton"
    assert llm.engine.runner.backend.cascade_steps == 3  # the branches' prefill and two decode steps
    assert tokens == expected_tokens
    assert len(logits) == len(expected_logits)
    for got, want in zip(logits, expected_logits):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    llm.engine.check_integrity()
