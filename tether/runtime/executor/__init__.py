"""The executor: compiled programs run event-driven on asyncio, tools through a ``ToolRunner``, LLM calls
through an ``LLMBackend`` (the local engine or an OpenAI-compatible server). Backends import lazily."""

from __future__ import annotations

from tether.runtime.executor.errors import (
    ExecutorError,
    LLMBackendError,
    LLMOutputError,
    LLMServerError,
    LLMTimeoutError,
    NodeFailedError,
    ProgramCancelledError,
    ReferenceResolutionError,
)
from tether.runtime.executor.executor import Executor
from tether.runtime.executor.llm import (
    LLMBackend,
    LLMDelta,
    LLMRequest,
    LLMResult,
    LLMToolCall,
    StreamingLLMBackend,
    Usage,
    stream_llm,
)
from tether.runtime.executor.run import ProgramResult, ProgramRun
from tether.runtime.executor.steps import DeltaHook

__all__ = [
    "DeltaHook",
    "Executor",
    "ExecutorError",
    "LLMBackend",
    "LLMBackendError",
    "LLMDelta",
    "LLMOutputError",
    "LLMRequest",
    "LLMResult",
    "LLMServerError",
    "LLMTimeoutError",
    "LLMToolCall",
    "NodeFailedError",
    "ProgramCancelledError",
    "ProgramResult",
    "ProgramRun",
    "ReferenceResolutionError",
    "StreamingLLMBackend",
    "Usage",
    "stream_llm",
]
