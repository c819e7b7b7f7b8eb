"""``tether.runtime``: the engine and its offline API (``from tether.runtime import LLM, SamplingParams``), the
executor, policies, replay and simulation, tracing, the server and the UI. Heavy imports are lazy so
``import tether.runtime`` works everywhere (without torch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether._lazy import lazy_exports

if TYPE_CHECKING:
    from tether.runtime.engine.async_engine import AsyncEngine
    from tether.runtime.engine.config import EngineConfig
    from tether.runtime.engine.llm import LLM
    from tether.runtime.engine.outputs import CompletionOutput, RequestOutput
    from tether.runtime.engine.sampling_params import SamplingParams
    from tether.runtime.engine.sequence import ProgramHints
    from tether.runtime.engine.structured.params import StructuredOutputs, StructuredOutputsParams

_EXPORTS = {
    "LLM": "tether.runtime.engine.llm",
    "SamplingParams": "tether.runtime.engine.sampling_params",
    "RequestOutput": "tether.runtime.engine.outputs",
    "CompletionOutput": "tether.runtime.engine.outputs",
    "AsyncEngine": "tether.runtime.engine.async_engine",
    "ProgramHints": "tether.runtime.engine.sequence",
    "EngineConfig": "tether.runtime.engine.config",
    "StructuredOutputs": "tether.runtime.engine.structured.params",
    "StructuredOutputsParams": "tether.runtime.engine.structured.params",
}

__all__ = [
    "LLM",
    "AsyncEngine",
    "CompletionOutput",
    "EngineConfig",
    "ProgramHints",
    "RequestOutput",
    "SamplingParams",
    "StructuredOutputs",
    "StructuredOutputsParams",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
