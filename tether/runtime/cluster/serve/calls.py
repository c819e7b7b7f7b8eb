"""What the cluster's ingress sends a replica (``ReplicaCall``) and what a replica answers first
(``ReplicaHead``). Plain frozen values: they cross process boundaries (Ray pickles them) and import no Ray."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

CallOp = Literal["generate", "end", "stats", "integrity"]


@dataclass(frozen=True)
class ReplicaCall:
    """One call to a replica.

    ``op``: ``generate`` (an OpenAI request: ``endpoint``, the raw ``body``, the ``headers``), ``end`` (end
    ``program_id`` there, its pins released, for ``reason``: ``client``, ``idle`` or ``moved``), ``stats`` (the
    replica's counters) or ``integrity`` (its KV cache's invariants checked).
    ``program_id``: the program the request belongs to (``None``: none), for the routers.
    ``prompt``: the request's text as Ray Serve LLM's ``PrefixCacheAffinityRouter`` reads it (its
    ``prompt`` attribute): a text prompt, the messages' contents in order, or token ids as decimal numbers
    each followed by a space (so a shared token prefix is a shared character prefix).
    ``target``: the replica that must take the call (its Ray Serve replica id); ``None`` lets the router choose.
    """

    op: CallOp
    program_id: str | None = None
    endpoint: str = ""
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    prompt: str = ""
    target: str | None = None
    reason: str = "client"
    call_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True)
class ReplicaHead:
    """A replica's first answer to ``generate``: which replica served it, and either the whole response
    (``body``, a JSON object, with ``status``; ``headers`` for errors such as ``Retry-After``) or, with
    ``stream``, the server-sent events that follow (bytes)."""

    replica_id: str
    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    stream: bool = False


def prompt_text(doc: dict[str, Any]) -> str:
    """A request body's ``ReplicaCall.prompt`` (see there); ``""`` when it has neither prompt nor messages."""
    if "messages" in doc and isinstance(doc["messages"], list):
        return "".join(_content(m.get("content")) for m in doc["messages"] if isinstance(m, dict))
    prompt = doc.get("prompt")
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], list):
        prompt = prompt[0]  # a batch: route on its first prompt
    if isinstance(prompt, list):
        if all(isinstance(t, int) for t in prompt):
            return "".join(f"{t} " for t in prompt)
        return "".join(p for p in prompt if isinstance(p, str))
    return ""


def _content(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: their text
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""
