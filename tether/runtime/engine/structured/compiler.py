r"""Compiles ``StructuredOutputs`` into xgrammar grammars, once per distinct spec (a bounded LRU cache).

Kinds, as vLLM and SGLang compile them with xgrammar:

- ``json``: ``Grammar.from_json_schema(schema, any_whitespace=False)`` (what ``compile_json_schema`` does):
  compact JSON with ``json.dumps``' default separators ``", "`` and ``": "``, properties in the schema's
  order (a small model left free to add whitespace tends to loop on it). One fix: xgrammar 0.2.9 writes the
  characters of a length-bounded string (``maxLength`` / ``minLength``) as ``[^\"\\\r\n]``, which lets raw
  control characters (a tab, ``\x01``) into a JSON string, and strict JSON parsers reject those; that class is
  narrowed to ``[^\0-\x1f\"\\]`` (a no-op once xgrammar prints something else);
- ``json_object``: the schema ``{"type": "object"}`` compiled the same way (any JSON object, compact);
- ``regex``: ``compile_regex``; ``grammar``: ``compile_grammar`` (EBNF, root rule ``root``);
- ``choice``: the grammar ``root ::= "a" | "b" | ...`` with every choice escaped.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import xgrammar as xgr

from tether.runtime.engine.structured.params import FIELD, StructuredOutputs

JSON_SEPARATORS = (", ", ": ")  # json.dumps' defaults
_RAW_STRING_CHARS = r"[^\"\\\r\n]"  # xgrammar's characters of a length-bounded JSON string
_JSON_STRING_CHARS = r"[^\0-\x1f\"\\]"  # what JSON allows unescaped
_XGR_PREFIX = re.compile(r"^\[[\d:]+\] \S+:\d+: (Check failed: \(.*?\) is false: )?")


class GrammarCompileError(ValueError):
    """A spec that does not compile; ``field`` is ``structured_outputs.<kind>``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    size: int
    capacity: int


class GrammarCompilerCache:
    """One ``xgrammar.GrammarCompiler`` for the engine's tokenizer and an LRU of compiled grammars keyed by
    ``StructuredOutputs.key`` (xgrammar's own cache is off: this one is the bound). Failures are not cached."""

    def __init__(self, tokenizer_info: xgr.TokenizerInfo, capacity: int = 256, max_threads: int = 8) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.tokenizer_info = tokenizer_info
        self.compiler = xgr.GrammarCompiler(tokenizer_info, max_threads=max_threads, cache_enabled=False)
        self.capacity = capacity
        self._grammars: OrderedDict[tuple[str, str], xgr.CompiledGrammar] = OrderedDict()
        self._hits = 0
        self._misses = 0

    @property
    def stats(self) -> CacheStats:
        return CacheStats(self._hits, self._misses, len(self._grammars), self.capacity)

    def get(self, spec: StructuredOutputs) -> xgr.CompiledGrammar:
        """The compiled grammar of ``spec``; raises ``GrammarCompileError`` when it does not compile."""
        key = spec.key
        grammar = self._grammars.get(key)
        if grammar is not None:
            self._hits += 1
            self._grammars.move_to_end(key)
            return grammar
        self._misses += 1
        grammar = self._compile(spec)
        self._grammars[key] = grammar
        if len(self._grammars) > self.capacity:
            self._grammars.popitem(last=False)
        return grammar

    def _compile(self, spec: StructuredOutputs) -> xgr.CompiledGrammar:
        kind = spec.kind
        field = f"{FIELD}.{kind}"
        compiler = self.compiler
        try:
            if kind == "json":
                return self._json(_schema_text(field, spec.json))
            if kind == "json_object":
                return self._json('{"type": "object"}')
            if kind == "regex":
                return compiler.compile_regex(_text(field, spec.regex))
            if kind == "grammar":
                return compiler.compile_grammar(_text(field, spec.grammar))
            return compiler.compile_grammar(choice_grammar(spec.choice or ()))
        except (RuntimeError, ValueError, TypeError) as exc:
            if isinstance(exc, GrammarCompileError):
                raise
            raise GrammarCompileError(field, _clean(str(exc))) from exc

    def _json(self, schema: str) -> xgr.CompiledGrammar:
        grammar = xgr.Grammar.from_json_schema(schema, any_whitespace=False, separators=JSON_SEPARATORS)
        text = str(grammar)
        fixed = text.replace(_RAW_STRING_CHARS, _JSON_STRING_CHARS)
        return self.compiler.compile_grammar(fixed if fixed != text else grammar)


def choice_grammar(choices: Sequence[str]) -> str:
    """``root ::= "a" | "b"``: each choice as an EBNF string literal (quote and backslash escaped, control
    and non-printable characters as ``\\uXXXX`` / ``\\UXXXXXXXX``)."""
    if not choices:
        raise GrammarCompileError(f"{FIELD}.choice", "must not be empty")
    return "root ::= " + " | ".join(_ebnf_literal(c) for c in choices)


def _ebnf_literal(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            cp = ord(ch)
            out.append(f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}")
    return '"' + "".join(out) + '"'


def _schema_text(field: str, schema: object) -> str:
    """The schema as JSON text; a string must parse as JSON and the schema must be a JSON object."""
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as exc:
            raise GrammarCompileError(field, f"the schema is not valid JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise GrammarCompileError(field, f"a JSON schema must be an object, got {type(schema).__name__}")
    try:
        return json.dumps(schema)
    except (TypeError, ValueError) as exc:
        raise GrammarCompileError(field, f"the schema is not JSON-serializable: {exc}") from None


def _text(field: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise GrammarCompileError(field, "must be a non-empty string")
    return value


def _clean(message: str) -> str:
    """xgrammar's C++ message without its timestamp and source location, on one line, bounded."""
    lines = [_XGR_PREFIX.sub("", line).strip() for line in message.strip().splitlines()]
    text = " ".join(line for line in lines if line)
    return text[:300] or "does not compile"
