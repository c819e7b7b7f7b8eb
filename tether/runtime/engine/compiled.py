"""The model's forward pass compiled by ``torch.compile`` (inductor) on CPU: the default there
(``enforce_eager=None``), ``enforce_eager=True`` (``--enforce-eager``) runs eager.

``CompiledForward(model)(input_ids [T], positions [T], logits_rows [N], attn) -> logits [N, V] fp32`` runs the
decoder as one inductor graph with dynamic shapes, then the vocabulary projection of the sampled rows eager (the
sampled row count would be a second symbolic size, with graphs for 0 and 1):

- **Matmuls stay the engine's**, on their oneDNN-prepacked weights (``models/linear.py``): every linear of the
  model is replaced by an opaque op, ``tether::linear(x, forward, index, out_features)``, that calls the
  model's own ``LinearFn``. The graph holds no weight as a constant (no freezing), so inductor's FX-graph
  cache can store it: with frozen oneDNN weights it refuses ("mkldnn tensors unpickleable") and every start
  compiled again (about 55 s for SmolLM2 on the 2-core machine).
- **Everything between the matmuls fused**: RMSNorm, RoPE, SiLU-and-multiply and the residual adds become a
  few generated C++ loops instead of about 25 aten ops per layer, each with Python and dispatch overhead.
- **Attention stays the engine's** too, an opaque op (``tether::paged_attention``): the graph passes q, k and v
  and the layer number, and the op calls the step's ``attn`` (the paged-KV backend). A step's metadata
  therefore never enters the graph, and neither does the KV cache.
- **Shapes.** The token count is one symbolic size. Dynamo specialises the sizes 0 and 1, so there are two
  graphs: one token (decode at batch 1) and two or more (every other step). ``warm_up()`` compiles both at
  engine start, so no request pays for it, and the time is reported (``compile_s``).
- **Cache.** Inductor's caches live in ``$TETHER_HOME/compile`` (``TORCHINDUCTOR_CACHE_DIR``, unless it names
  a folder of the user's: ``compile_cache_dir``). The ops' ints are the same in every process for the first
  engine of a process (``forward`` counts engines, ``index`` is the linear's place in module order), so a later
  start finds its graphs there and only Dynamo's tracing remains (SmolLM2 here: about 60 s to ready the first
  time, 20 s after).

CPU only for now: on CUDA the engine runs eager (CUDA graphs are not built yet).
"""

from __future__ import annotations

import itertools
import os
import time
import weakref
from dataclasses import dataclass

import torch

from tether.runtime.engine.attention.base import AttentionFn
from tether.runtime.engine.models.linear import DenseLinear, LinearFn, PackedLinear

_LIB = torch.library.Library("tether", "FRAGMENT")
_LIB.define("paged_attention(Tensor q, Tensor k, Tensor v, int layer, int forward) -> Tensor")
_LIB.define("linear(Tensor x, int forward, int index, int out_features) -> Tensor")
_FORWARDS: dict[int, weakref.ref[CompiledForward]] = {}
CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"
_handles = itertools.count()


def _owner(forward: int) -> CompiledForward:
    ref = _FORWARDS.get(forward)
    owner = ref() if ref is not None else None
    if owner is None:
        raise RuntimeError(f"tether:: op called for compiled forward {forward}, which no longer exists")
    return owner


def _paged_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layer: int, forward: int
) -> torch.Tensor:
    owner = _owner(forward)
    if owner.attn is None:
        raise RuntimeError("tether::paged_attention called outside a CompiledForward step")
    return owner.attn(layer, q, k, v)


def _linear(x: torch.Tensor, forward: int, index: int, out_features: int) -> torch.Tensor:
    return _owner(forward).linears[index].fn(x)


_LIB.impl("paged_attention", _paged_attention, "CompositeExplicitAutograd")
_LIB.impl("linear", _linear, "CompositeExplicitAutograd")


@torch.library.register_fake("tether::paged_attention")
def _paged_attention_fake(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layer: int, forward: int):
    return torch.empty_like(q)  # (T, Hq, D)


@torch.library.register_fake("tether::linear")
def _linear_fake(x: torch.Tensor, forward: int, index: int, out_features: int):
    return x.new_empty((*x.shape[:-1], out_features))  # (..., out)


@dataclass(frozen=True)
class _OpaqueLinear:
    """Stands in the model for one of its ``LinearFn``s: the graph sees ``tether::linear`` and two ints."""

    forward: int
    index: int
    out_features: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.tether.linear(x, self.forward, self.index, self.out_features)


@dataclass(frozen=True)
class _Replaced:
    module: torch.nn.Module
    name: str
    fn: LinearFn


def _make_opaque(model: torch.nn.Module, forward: int) -> list[_Replaced]:
    """Every ``DenseLinear``/``PackedLinear`` attribute of ``model``'s modules replaced by an ``_OpaqueLinear``,
    in module order (so the same model gives the same indices, and the same graph, in every process)."""
    replaced: list[_Replaced] = []
    for module in model.modules():
        for name, value in list(vars(module).items()):
            if isinstance(value, (DenseLinear, PackedLinear)):
                out_features = value.weight.shape[0] if isinstance(value, DenseLinear) else value.out_features
                setattr(module, name, _OpaqueLinear(forward, len(replaced), out_features))
                replaced.append(_Replaced(module, name, value))
    return replaced


class _Body(torch.nn.Module):
    """What is compiled: the decoder, its linears and attention as opaque ops."""

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
    """Where inductor keeps compiled graphs: ``$TORCHINDUCTOR_CACHE_DIR`` where it names a folder of the user's,
    else ``$TETHER_HOME/compile``. (Torch sets the variable to its own default, under ``/tmp``, the first time it
    looks, e.g. at ``import torch._dynamo``, so that value is taken as unset.)"""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    from tether.home import tether_home

    current = os.environ.get(CACHE_ENV)
    if current and os.path.abspath(current) != os.path.abspath(default_cache_dir()):
        return current
    return str(tether_home() / "compile")


class CompiledForward:
    """One model's compiled forward (see the module docstring). Not thread-safe: one step at a time.

    It changes ``model`` in place (its linears become ``tether::linear`` calls, which still run eager);
    ``release()`` puts them back."""

    def __init__(self, model: torch.nn.Module) -> None:
        os.environ[CACHE_ENV] = compile_cache_dir()  # inductor reads it at every cache lookup
        self.model = model
        self.attn: AttentionFn | None = None
        self.handle = next(_handles)
        _FORWARDS[self.handle] = weakref.ref(self)
        weakref.finalize(self, _FORWARDS.pop, self.handle, None)
        self.linears = _make_opaque(model, self.handle)
        self.compile_s = 0.0  # time spent in warm_up()
        body = _Body(model, self.handle)
        self._fn = torch.compile(body, dynamic=True, fullgraph=True)

    def __call__(
        self, input_ids: torch.Tensor, positions: torch.Tensor, rows: torch.Tensor, attn: AttentionFn
    ) -> torch.Tensor:
        self.attn = attn
        try:
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

    def release(self) -> None:
        """The model's own linears back in place (after a failed compile: the model then runs eager)."""
        for r in self.linears:
            setattr(r.module, r.name, r.fn)


EAGER_ENV = "TETHER_ENFORCE_EAGER"  # "1": the default (enforce_eager=None) runs eager, as the test suite does


def should_compile(device: torch.device, enforce_eager: bool | None) -> bool:
    """Whether the engine compiles its forward: on CPU, unless ``enforce_eager`` is True, or it is None (the
    default) and ``$TETHER_ENFORCE_EAGER`` is ``1``. On CUDA never, yet (the engine runs eager there)."""
    if device.type != "cpu" or enforce_eager is True:
        return False
    return enforce_eager is False or os.environ.get(EAGER_ENV, "") != "1"
