"""JSON schemas in the DAG: an LLM call's ``output`` schema becomes a pydantic type (so its value is typed),
and a reference's path (``${plan.output.steps[0]}``) is checked against its source's schema before a run."""

from __future__ import annotations

import re
from typing import Any, Literal, Optional, Union

import pydantic
from pydantic import ConfigDict, Field, TypeAdapter

from tether.dag.refs import PathItem

_PRIMITIVES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "null": type(None),
}


class SchemaConversionError(ValueError):
    """The schema uses something this converter does not handle; the message says where."""


def output_type(schema: dict[str, Any], name: str) -> TypeAdapter:
    """A ``TypeAdapter`` for values of ``schema``: objects with ``properties`` become pydantic models (named
    after ``name`` and their property path), arrays lists, ``enum`` a ``Literal``, ``anyOf``/``oneOf`` a union.
    Properties not in ``required`` default to ``None``; ``additionalProperties: false`` forbids extras."""
    if not isinstance(schema, dict):
        raise SchemaConversionError(f"a schema is a mapping, got {type(schema).__name__}")
    defs = schema.get("$defs") or schema.get("definitions") or {}
    return TypeAdapter(_convert(schema, _title(name), defs, ()))


def _title(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", name) if p) or "Output"


def _convert(schema: Any, name: str, defs: dict[str, Any], seen: tuple[str, ...]) -> Any:
    if schema is True or schema == {}:
        return Any
    if not isinstance(schema, dict):
        raise SchemaConversionError(f"{name}: expected a schema mapping, got {schema!r}")
    if "$ref" in schema:
        ref = schema["$ref"]
        key = ref.rsplit("/", 1)[-1]
        if key not in defs or key in seen:
            raise SchemaConversionError(f"{name}: cannot resolve $ref {ref!r} (unknown or recursive)")
        return _convert(defs[key], key, defs, (*seen, key))
    if "enum" in schema:
        return Literal[tuple(schema["enum"])]  # type: ignore[valid-type]
    if "const" in schema:
        return Literal[schema["const"]]  # type: ignore[valid-type]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = tuple(_convert(s, f"{name}{i}", defs, seen) for i, s in enumerate(schema[key]))
            return Union[options]  # noqa: UP007 - built from a runtime tuple
    kind = schema.get("type")
    if isinstance(kind, list):
        return Union[tuple(_convert({**schema, "type": k}, name, defs, seen) for k in kind)]  # noqa: UP007
    if kind in _PRIMITIVES:
        return _PRIMITIVES[kind]
    if kind == "array":
        if "prefixItems" in schema:
            items = tuple(_convert(s, f"{name}Item", defs, seen) for s in schema["prefixItems"])
            return tuple[items]  # type: ignore[valid-type]
        return list[_convert(schema.get("items", True), f"{name}Item", defs, seen)]  # type: ignore[misc]
    if kind == "object" or "properties" in schema:
        return _object(schema, name, defs, seen)
    if kind is None:
        return Any
    raise SchemaConversionError(f"{name}: unsupported type {kind!r}")


def _object(schema: dict[str, Any], name: str, defs: dict[str, Any], seen: tuple[str, ...]) -> Any:
    props = schema.get("properties")
    extra = schema.get("additionalProperties", True)
    if not props:
        value = Any if extra in (True, {}) or extra is False else _convert(extra, f"{name}Value", defs, seen)
        return dict[str, value]  # type: ignore[valid-type]
    required = set(schema.get("required", ()))
    fields: dict[str, Any] = {}
    for prop, sub in props.items():
        tp = _convert(sub, f"{name}{_title(prop)}", defs, seen)
        desc = sub.get("description") if isinstance(sub, dict) else None
        if prop in required:
            fields[prop] = (tp, Field(..., description=desc))
        else:
            fields[prop] = (Optional[tp], Field(sub.get("default") if isinstance(sub, dict) else None))  # noqa: UP045
    config = ConfigDict(extra="forbid" if extra is False else "ignore")
    try:
        return pydantic.create_model(name, __config__=config, **fields)
    except (pydantic.PydanticUserError, TypeError, NameError) as exc:
        raise SchemaConversionError(f"{name}: {exc}") from exc


# -- reference paths ---------------------------------------------------------------------------------------
def check_path(schema: dict[str, Any] | None, path: tuple[PathItem, ...]) -> str | None:
    """Why ``path`` cannot exist in a value of ``schema``, or ``None`` if it may. Objects that list their
    ``properties`` are taken as closed (a field outside them is a typo) unless ``additionalProperties`` allows
    more; an unknown or empty schema allows anything."""
    if schema is None:
        return None
    defs = schema.get("$defs") or schema.get("definitions") or {}
    return _check(schema, path, defs, 0)


def _check(schema: Any, path: tuple[PathItem, ...], defs: dict[str, Any], depth: int) -> str | None:
    if not path or not isinstance(schema, dict) or depth > 32:
        return None
    if "$ref" in schema:
        return _check(defs.get(schema["$ref"].rsplit("/", 1)[-1]), path, defs, depth + 1)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            reasons = [_check(s, path, defs, depth + 1) for s in schema[key]]
            return None if any(r is None for r in reasons) else reasons[0]
    step, rest = path[0], path[1:]
    kind = schema.get("type")
    if isinstance(step, int):
        if kind == "array":
            prefix = schema.get("prefixItems")
            if prefix is not None:
                if not -len(prefix) <= step < len(prefix):
                    return f"index [{step}] is outside a {len(prefix)}-item tuple"
                return _check(prefix[step], rest, defs, depth + 1)
            return _check(schema.get("items"), rest, defs, depth + 1)
        if kind is None:
            return None
        return f"[{step}]: the value is {kind}, not an array"
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        if step in props:
            return _check(props[step], rest, defs, depth + 1)
        extra = schema.get("additionalProperties", not props)
        if extra is False:
            known = ", ".join(props) or "none"
            return f".{step}: no such field (fields: {known})"
        return _check(extra, rest, defs, depth + 1) if isinstance(extra, dict) else None
    if kind is None:
        return None
    return f".{step}: the value is {kind}, not an object"
