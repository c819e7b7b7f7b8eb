"""Structured generation: per-request grammars (xgrammar) applied as a token bitmask in the sampler."""

from runtime.engine.structured.params import StructuredOutputs, StructuredOutputsParams

__all__ = ["StructuredOutputs", "StructuredOutputsParams"]
