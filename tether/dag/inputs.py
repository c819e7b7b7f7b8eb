"""Program inputs: checking given values against their ``InputSpec`` types, defaults, and parsing the
``key=value`` text the command line gives."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tether.dag.errors import InputError
from tether.dag.ir import InputSpec, InputType, Program

_CHECKS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list, tuple),
}


def check_value(name: str, spec: InputSpec, value: Any) -> Any:
    """``value`` if it has the input's type (no coercion; a bool is not a number); ``InputError``."""
    ok = isinstance(value, _CHECKS[spec.type]) and not (
        spec.type in ("integer", "number") and isinstance(value, bool)
    )
    if not ok:
        raise InputError(name, f"expected {spec.type}, got {type(value).__name__} {value!r}")
    return list(value) if isinstance(value, tuple) else value


def bind_inputs(program: Program, given: Mapping[str, Any]) -> dict[str, Any]:
    """The values of every input: given ones checked, defaults for the rest; ``InputError`` names an unknown,
    missing or mistyped input."""
    for name in given:
        if name not in program.inputs:
            known = ", ".join(program.inputs) or "none"
            raise InputError(name, f"the program has no such input (inputs: {known})")
    bound: dict[str, Any] = {}
    for name, spec in program.inputs.items():
        if name in given:
            bound[name] = check_value(name, spec, given[name])
        elif spec.required:
            raise InputError(name, f"missing required input of type {spec.type}")
        else:
            bound[name] = spec.default
    return bound


def parse_text(name: str, kind: InputType, text: str) -> Any:
    """A command-line value: strings as given, numbers and booleans parsed, objects and arrays as JSON."""
    try:
        if kind == "string":
            return text
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
        if kind == "boolean":
            lowered = text.strip().lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            raise ValueError("expected true or false")
        value = json.loads(text)
    except (ValueError, json.JSONDecodeError) as exc:
        raise InputError(name, f"cannot read {text!r} as {kind}: {exc}") from None
    return value


def parse_assignments(program: Program, items: list[str]) -> dict[str, Any]:
    """``["k=v", ...]`` typed by the program's inputs (an unknown key stays a string, and ``bind_inputs``
    reports it)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise InputError(item, "expected key=value")
        spec = program.inputs.get(key)
        out[key] = parse_text(key, spec.type, text) if spec is not None else text
    return out
