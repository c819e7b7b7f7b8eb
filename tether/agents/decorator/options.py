"""Per-call options of a decorator agent's nodes, as a workflow YAML node writes them (docs/workflow-yaml.md):
``timeout`` (seconds per attempt, > 0) and ``retry`` (a ``RetryPolicy``; an ``int`` is its ``attempts``, tries in
all; a mapping its fields, as YAML's ``retry: {attempts: 2, backoff_s: 0.1}``).

    search.options(timeout=2.0, retry=3)(q)      # a tool call: node ToolCall(timeout=2.0, retry=RetryPolicy(3))
    llm(prompt, timeout=30, retry=2)             # an LLM call takes the same two keywords

A bad value is an ``AgentArgumentError`` naming the tool (or ``llm()``), the option and the agent's line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic

from tether.agents.decorator.errors import AgentArgumentError
from tether.agents.decorator.frames import agent_location
from tether.dag.ir import RetryPolicy

OPTIONS = ("timeout", "retry")


def _error(what: str, node_id: str, message: str) -> AgentArgumentError:
    file, line = agent_location()
    return AgentArgumentError(f"{what}: {message}", node=node_id, path=file, line=line)


def timeout_option(what: str, node_id: str, value: Any) -> float | None:
    """``value`` as a node's ``timeout``: ``None`` or seconds > 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise _error(what, node_id, f"option 'timeout' must be a number of seconds > 0, got {value!r}")
    return float(value)


def retry_option(what: str, node_id: str, value: Any) -> RetryPolicy | None:
    """``value`` as a node's ``retry``: ``None``, a ``RetryPolicy``, its ``attempts`` (an int >= 1) or its
    fields (a mapping)."""
    if value is None or isinstance(value, RetryPolicy):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise _error(what, node_id, f"option 'retry' (attempts in all) must be >= 1, got {value}")
        return RetryPolicy(attempts=value)
    if isinstance(value, Mapping):
        try:
            return RetryPolicy(**value)
        except pydantic.ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            field = ".".join(str(p) for p in err["loc"])
            raise _error(what, node_id, f"option 'retry.{field}': {err['msg']}") from None
        except TypeError as exc:
            raise _error(what, node_id, f"option 'retry': {exc}") from None
    raise _error(
        what, node_id, f"option 'retry' must be a RetryPolicy, an int (attempts) or a mapping, got {value!r}"
    )


def tool_options(tool: str, node_id: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The ``ToolCall`` fields of ``tool.options(...)``: ``timeout`` and ``retry`` when given."""
    what = f"tool {tool!r}"
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise _error(what, node_id, f"unknown option {unknown[0]!r} (options: {', '.join(OPTIONS)})")
    out: dict[str, Any] = {}
    if options.get("timeout") is not None:
        out["timeout"] = timeout_option(what, node_id, options["timeout"])
    if options.get("retry") is not None:
        out["retry"] = retry_option(what, node_id, options["retry"])
    return out
