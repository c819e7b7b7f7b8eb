"""Structured generation: per-request grammars (xgrammar) applied as a token bitmask in the sampler."""

from tether.runtime.engine.structured.params import StructuredOutputs, StructuredOutputsParams

__all__ = ["StructuredOutputs", "StructuredOutputsParams"]
