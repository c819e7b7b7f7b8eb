"""``StructuredOutputs``: what a request's output must match, following vLLM's names (torch-free)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tether.runtime.engine.errors import InvalidRequestError

FIELD = "structured_outputs"


@dataclass(frozen=True)
class StructuredOutputs:
    """Exactly one constraint: ``json`` (a JSON schema, as a dict or its JSON text), ``regex``, ``grammar``
    (EBNF, xgrammar's GBNF dialect, root rule ``root``), ``choice`` (the output is one of these strings) or
    ``json_object=True`` (any JSON object).

    Constructing one checks only its shape; whether the schema, regex or grammar compiles is checked when the
    request is added (``InvalidRequestError`` naming ``structured_outputs.<kind>``).
    """

    json: dict[str, Any] | str | None = None
    regex: str | None = None
    grammar: str | None = None
    choice: tuple[str, ...] | None = None
    json_object: bool = False

    def __post_init__(self) -> None:
        if self.choice is not None:
            if isinstance(self.choice, str) or not all(isinstance(c, str) for c in self.choice):
                raise InvalidRequestError(None, f"{FIELD}.choice", "must be a list of strings")
            object.__setattr__(self, "choice", tuple(self.choice))
            if not self.choice:
                raise InvalidRequestError(None, f"{FIELD}.choice", "must not be empty")
        given = [k for k in ("json", "regex", "grammar", "choice") if getattr(self, k) is not None]
        given += ["json_object"] if self.json_object else []
        if len(given) != 1:
            raise InvalidRequestError(
                None,
                FIELD,
                f"give exactly one of json, regex, grammar, choice, json_object (got {given or None})",
            )

    @property
    def kind(self) -> str:
        """``"json" | "regex" | "grammar" | "choice" | "json_object"``."""
        for k in ("json", "regex", "grammar", "choice"):
            if getattr(self, k) is not None:
                return k
        return "json_object"

    @property
    def key(self) -> tuple[str, str]:
        """The compiled-grammar cache key: the kind and its spec as text. A schema dict keeps its key order
        (the output follows the schema's property order, so reordered properties are another grammar)."""
        kind = self.kind
        if kind == "json":
            spec = self.json if isinstance(self.json, str) else _dumps(self.json)
        elif kind == "choice":
            spec = json.dumps(list(self.choice or ()))
        elif kind == "json_object":
            spec = ""
        else:
            spec = getattr(self, kind)
        return kind, spec


def _dumps(schema: object) -> str:
    try:
        return json.dumps(schema)
    except (TypeError, ValueError):
        return repr(schema)  # not JSON: compiling it fails with a clear reason; the key only has to exist


StructuredOutputsParams = StructuredOutputs  # vLLM's name for the same thing
