"""The model's forward pass compiled by ``torch.compile`` (inductor) on CPU; opt-in (``enforce_eager=False``).

``CompiledForward(model)(input_ids [T], positions [T], logits_rows [N], attn) -> logits [N, V] fp32`` runs the
decoder as one inductor graph with dynamic shapes, then the vocabulary projection of the sampled rows eager on
its own oneDNN-packed weight (the sampled row count would be a second symbolic size, with graphs for 0 and 1):

- **Weights frozen and prepacked.** Inductor's freezing turns the parameters into constants and packs every
  linear weight for oneDNN (``mkldnn._linear_pointwise``: in bfloat16 with the AVX-512 BF16 or AMX kernels
  where the CPU has them; in float32 too, since the token count is symbolic). So the model is prepared with
  ``pack=False`` (``models/linear.py`` would pack them a second time).
- **Everything between the matmuls fused**: RMSNorm, RoPE, SiLU-and-multiply and the residual adds become a
  few generated C++ loops instead of about 25 aten ops per layer, each with Python and dispatch overhead.
- **Attention stays the engine's**, an opaque op (``tether::paged_attention``): the graph passes q, k and v and
  the layer number, and the op calls the step's ``attn`` (the paged-KV backend). A step's metadata therefore
  never enters the graph, and neither does the KV cache.
- **Shapes.** The token count is one symbolic size. Dynamo specialises the sizes 0 and 1, so there are two
  graphs: one token (decode at batch 1) and two or more (every other step). ``warm_up()`` compiles both at
  engine start, so no request pays for it, and the time is reported.
- **Cache.** Inductor's caches live in ``$TETHER_HOME/compile`` (``TORCHINDUCTOR_CACHE_DIR``, unless it is set
  already). Only the generated C++ kernels are reused by a later start: the FX-graph cache refuses graphs with
  packed oneDNN weights (``should_compile`` says what that costs), so compiling is opt-in.

CPU only for now: on CUDA the engine runs eager (CUDA graphs are not built yet).
"""

from __future__ import annotations

import itertools
import os
import time
import weakref

import torch
import torch._inductor.config

from tether.runtime.engine.attention.base import AttentionFn

_LIB = torch.library.Library("tether", "FRAGMENT")
_LIB.define("paged_attention(Tensor q, Tensor k, Tensor v, int layer, int forward) -> Tensor")
_FORWARDS: dict[int, weakref.ref[CompiledForward]] = {}
_handles = itertools.count()


def _paged_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layer: int, forward: int
) -> torch.Tensor:
    ref = _FORWARDS.get(forward)
    owner = ref() if ref is not None else None
    if owner is None or owner.attn is None:
        raise RuntimeError("tether::paged_attention called outside a CompiledForward step")
    return owner.attn(layer, q, k, v)


_LIB.impl("paged_attention", _paged_attention, "CompositeExplicitAutograd")


@torch.library.register_fake("tether::paged_attention")
def _paged_attention_fake(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layer: int, forward: int):
    return torch.empty_like(q)  # (T, Hq, D)


class _Body(torch.nn.Module):
    """What is compiled: the decoder, with attention as the opaque op."""

    def __init__(self, model: torch.nn.Module, handle: int) -> None:
        super().__init__()
        self.model = model
        self.handle = handle

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        handle = self.handle

        def attn(layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return torch.ops.tether.paged_attention(q, k, v, layer, handle)

        return self.model(input_ids, positions, attn)  # (T, H)


def compile_cache_dir() -> str:
    """Where inductor keeps compiled graphs: ``$TORCHINDUCTOR_CACHE_DIR``, else ``$TETHER_HOME/compile``."""
    from tether.home import tether_home

    return os.environ.get("TORCHINDUCTOR_CACHE_DIR") or str(tether_home() / "compile")


class CompiledForward:
    """One model's compiled forward (see the module docstring). Not thread-safe: one step at a time."""

    def __init__(self, model: torch.nn.Module) -> None:
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", compile_cache_dir())
        self.model = model
        self.attn: AttentionFn | None = None
        self.handle = next(_handles)
        _FORWARDS[self.handle] = weakref.ref(self)
        weakref.finalize(self, _FORWARDS.pop, self.handle, None)
        self.compile_s = 0.0  # time spent in warm_up()
        body = _Body(model, self.handle)
        self._fn = torch.compile(body, dynamic=True, fullgraph=True)

    def __call__(
        self, input_ids: torch.Tensor, positions: torch.Tensor, rows: torch.Tensor, attn: AttentionFn
    ) -> torch.Tensor:
        self.attn = attn
        try:
            with torch._inductor.config.patch(freezing=True):  # read when a graph compiles (first calls)
                hidden = self._fn(input_ids, positions)  # (T, H)
        finally:
            self.attn = None
        return self.model.compute_logits(hidden[rows])  # (N, V), eager: the sampled rows vary on their own

    def warm_up(self, device: torch.device) -> float:
        """Compile both graphs (one token, two tokens) with attention that returns zeros; returns seconds."""
        t0 = time.perf_counter()
        rotary = self.model.model.rotary_emb
        rotary.ensure_capacity(rotary.max_positions, device)  # made now, not while a graph is traced

        def zeros(layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return torch.zeros_like(q)

        for tokens in (1, 2):
            # made outside inference mode, like the runner's inputs: Dynamo guards on the dispatch keys
            ids = torch.zeros(tokens, dtype=torch.int64, device=device)
            positions = torch.arange(tokens, dtype=torch.int64, device=device)
            rows = torch.arange(tokens, dtype=torch.int64, device=device)
            with torch.inference_mode():
                self(ids, positions, rows, zeros)
        self.compile_s = time.perf_counter() - t0
        return self.compile_s


def should_compile(device: torch.device, enforce_eager: bool | None) -> bool:
    """``enforce_eager=False`` compiles on CPU; ``True`` and ``None`` (the default) run eager.

    Eager is the default because a compiled start cannot be cached on this torch: freezing packs the weights
    into oneDNN tensors, which the FX-graph cache cannot pickle ("Bypassing FX Graph Cache because 'mkldnn
    tensors unpickleable'"), so every start compiles again (about 55 s for SmolLM2 on the 2-core machine) for
    a decode step 2-15% faster (docs/benchmarks.md)."""
    return enforce_eager is False and device.type == "cpu"
