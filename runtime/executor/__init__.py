"""The executor: compiled programs run event-driven on asyncio, tools through a ``ToolRunner``, LLM calls
through an ``LLMBackend`` (the local engine or an OpenAI-compatible server). Backends import lazily."""

from __future__ import annotations

from runtime.executor.errors import (
    ExecutorError,
    LLMBackendError,
    LLMOutputError,
    LLMTimeoutError,
    NodeFailedError,
    ProgramCancelledError,
    ReferenceResolutionError,
)
from runtime.executor.executor import Executor
from runtime.executor.llm import LLMBackend, LLMRequest, LLMResult, LLMToolCall
from runtime.executor.run import ProgramResult, ProgramRun

__all__ = [
    "Executor",
    "ExecutorError",
    "LLMBackend",
    "LLMBackendError",
    "LLMOutputError",
    "LLMRequest",
    "LLMResult",
    "LLMTimeoutError",
    "LLMToolCall",
    "NodeFailedError",
    "ProgramCancelledError",
    "ProgramResult",
    "ProgramRun",
    "ReferenceResolutionError",
]
