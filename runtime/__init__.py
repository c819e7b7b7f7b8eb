"""Tether runtime: the engine and its offline API (``from runtime import LLM, SamplingParams``), later the
executor, policies and server. Heavy imports are lazy so ``import runtime`` works everywhere."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.engine.async_engine import AsyncEngine
    from runtime.engine.config import EngineConfig
    from runtime.engine.llm import LLM
    from runtime.engine.outputs import CompletionOutput, RequestOutput
    from runtime.engine.sampling_params import SamplingParams
    from runtime.engine.sequence import ProgramHints
    from runtime.engine.structured.params import StructuredOutputs, StructuredOutputsParams

_EXPORTS = {
    "LLM": "runtime.engine.llm",
    "SamplingParams": "runtime.engine.sampling_params",
    "RequestOutput": "runtime.engine.outputs",
    "CompletionOutput": "runtime.engine.outputs",
    "AsyncEngine": "runtime.engine.async_engine",
    "ProgramHints": "runtime.engine.sequence",
    "EngineConfig": "runtime.engine.config",
    "StructuredOutputs": "runtime.engine.structured.params",
    "StructuredOutputsParams": "runtime.engine.structured.params",
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


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")
