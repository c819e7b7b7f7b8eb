"""Typed errors of the executor; each names the program and node at fault and the cause."""

from __future__ import annotations


class ExecutorError(Exception):
    """Base class of every error the executor raises on purpose."""


class NodeFailedError(ExecutorError):
    """A node failed, so its program failed. ``cause`` is what the node raised (a ``ToolError``, an
    ``LLMBackendError``, an ``LLMOutputError``, a ``ReferenceResolutionError``, ...)."""

    def __init__(self, program_id: str, node: str, cause: BaseException, attempts: int = 1):
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(
            f"program {program_id!r}: node {node!r} failed{tries}: {type(cause).__name__}: {cause}"
        )
        self.program_id = program_id
        self.node = node
        self.cause = cause
        self.attempts = attempts


class ProgramCancelledError(ExecutorError):
    """The program was cancelled before it finished."""

    def __init__(self, program_id: str, reason: str = "cancelled"):
        super().__init__(f"program {program_id!r} was cancelled: {reason}")
        self.program_id = program_id
        self.reason = reason


class LLMBackendError(ExecutorError):
    """The LLM backend could not serve a node's call (HTTP error, engine error, bad request)."""

    def __init__(self, node: str, reason: str):
        super().__init__(f"node {node!r}: LLM call failed: {reason}")
        self.node = node
        self.reason = reason


class LLMServerError(LLMBackendError):
    """The server answered a node's call with an HTTP error, after the backend's own retries: ``status``, the
    server's ``message``, the body field at fault (``param``, e.g. ``messages[2].content``) and ``code`` its
    error object names, the ``url``, the ``request_id`` (``program/node#attempt``) and the ``retries`` made."""

    def __init__(
        self,
        node: str,
        status: int,
        message: str,
        *,
        url: str,
        request_id: str,
        param: str | None = None,
        code: str | None = None,
        retries: int = 0,
    ):
        named = [f"param {param!r}"] if param else []
        named += [f"code {code!r}"] if code else []
        named += [f"request {request_id}"] + ([f"after {retries} retries"] if retries else [])
        super().__init__(node, f"HTTP {status} from {url}: {message} ({', '.join(named)})")
        self.status, self.message, self.url, self.request_id = status, message, url, request_id
        self.param, self.code, self.retries = param, code, retries


class LLMTimeoutError(ExecutorError):
    def __init__(self, node: str, timeout: float):
        super().__init__(f"node {node!r}: LLM call timed out after {timeout:g} s")
        self.node = node
        self.timeout = timeout


class LLMOutputError(ExecutorError):
    """An LLM call's text does not parse into its ``output`` schema."""

    def __init__(self, node: str, reason: str, text: str):
        snippet = text if len(text) <= 120 else text[:117] + "..."
        super().__init__(f"node {node!r}: output does not fit its schema: {reason} (text: {snippet!r})")
        self.node = node
        self.reason = reason
        self.text = text


class ReferenceResolutionError(ExecutorError):
    """A reference could not be followed into the value it names (a missing field, an index too far)."""

    def __init__(self, node: str | None, ref: str, reason: str):
        owner = f"node {node!r}" if node is not None else "outputs"
        super().__init__(f"{owner}: reference {ref}: {reason}")
        self.node = node
        self.ref = ref
        self.reason = reason


class NoLLMBackendError(ExecutorError):
    def __init__(self, program: str, node: str):
        super().__init__(
            f"program {program!r} has LLM calls ({node!r}, ...) but the executor has no LLM backend"
        )
