"""Local tools for agent examples and the planner-vs-ReAct benchmark (no network).

``search_docs`` / ``read_doc`` search and read the text files in ``examples/docs/``; ``calculator`` evaluates
arithmetic; ``convert_units`` converts length, mass, temperature and time; ``lookup`` reads one field of a
table in ``examples/data/<table>.csv``. The docs state the same facts as the tables.

Every tool sleeps first for a simulated latency, seeded by the call's arguments (the same call waits the same
time, in whatever order calls run): with ``TOOL_LATENCY = "realistic"`` a lognormal draw around the tool's
``LATENCY_MEDIAN_S``; with ``"traces"`` one of the durations the shared workload traces measured for the
shell commands doing the same kind of work (``examples/tool_latency.py``); ``"none"`` does not wait.
``TOOL_LATENCY`` starts as the ``TETHER_TOOL_LATENCY`` env var (default ``"realistic"``); set it with
``set_latency``. The pure functions (``search``, ``evaluate``,
``convert``, ``lookup_value``, ``load_table``) do the work without the wait.

Load the tools with ``tools: [agent_tools.py]`` in a workflow, ``ToolRegistry.load("examples/agent_tools.py")``
or ``register_agent_tools()`` (the default registry); ``AGENT_TOOLS`` lists them.
"""

from __future__ import annotations

import ast
import asyncio
import csv
import functools
import hashlib
import importlib
import importlib.util
import json
import math
import operator
import os
import random
import re
from pathlib import Path
from types import ModuleType

from pydantic import BaseModel

from tether.tools import Tool, ToolError, ToolRegistry, default_registry, tool

HERE = Path(__file__).resolve().parent
DOCS_DIR = HERE / "docs"
DATA_DIR = HERE / "data"

LATENCY_MODES = ("traces", "realistic", "none")
TOOL_LATENCY = os.environ.get("TETHER_TOOL_LATENCY", "realistic")
LATENCY_SEED = 0
LATENCY_SIGMA = 0.5  # lognormal shape: the 90th percentile is ~1.9x the median
LATENCY_MEDIAN_S = {
    "search_docs": 0.45,
    "read_doc": 0.25,
    "calculator": 0.05,
    "convert_units": 0.1,
    "lookup": 0.3,
}


# -- errors ---------------------------------------------------------------------------------------------------
class AgentToolError(ToolError):
    """A call of an example tool that cannot be answered; the message says why and what would be valid."""


class ExpressionError(AgentToolError):
    """``calculator`` got something other than plain arithmetic, or the arithmetic failed."""


class UnitError(AgentToolError):
    """``convert_units`` got an unknown unit or two units of different quantities."""


class LookupMissError(AgentToolError):
    """``lookup`` got a table, key or field that does not exist."""


class DocumentError(AgentToolError):
    """``search_docs`` / ``read_doc`` got an empty query, a bad ``k`` or an unknown document id."""


# -- latency --------------------------------------------------------------------------------------------------
def set_latency(mode: str, seed: int | None = None) -> None:
    """Set ``TOOL_LATENCY`` (one of ``LATENCY_MODES``) and, optionally, ``LATENCY_SEED``."""
    global TOOL_LATENCY, LATENCY_SEED
    if mode not in LATENCY_MODES:
        raise ValueError(f"TOOL_LATENCY must be 'traces', 'realistic' or 'none', got {mode!r}")
    TOOL_LATENCY = mode
    if seed is not None:
        LATENCY_SEED = seed


def _call_key(tool_name: str, args: dict[str, object]) -> str:
    return json.dumps([LATENCY_SEED, tool_name, args], sort_keys=True, default=str)


def latency_s(tool_name: str, args: dict[str, object]) -> float:
    """The simulated latency of one call: lognormal around the tool's median, seeded by the arguments."""
    rng = random.Random(hashlib.sha256(_call_key(tool_name, args).encode()).digest())
    return LATENCY_MEDIAN_S[tool_name] * math.exp(rng.gauss(0.0, LATENCY_SIGMA))


def trace_latency_s(tool_name: str, args: dict[str, object]) -> float:
    """The measured latency of one call: a duration of the traces (``examples/tool_latency.py``), seeded by
    the arguments."""
    return _tool_latency().draw(tool_name, _call_key(tool_name, args))


@functools.cache
def _tool_latency() -> ModuleType:
    """``examples/tool_latency.py`` (imported as ``examples.tool_latency`` where it can be, else from its file:
    this module may be loaded from its path by a tool registry)."""
    try:
        return importlib.import_module("examples.tool_latency")
    except ImportError:
        spec = importlib.util.spec_from_file_location("_tether_tool_latency", HERE / "tool_latency.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


async def _wait(tool_name: str, **args: object) -> None:
    if TOOL_LATENCY == "none":
        return
    if TOOL_LATENCY == "traces":
        await asyncio.sleep(trace_latency_s(tool_name, args))
        return
    if TOOL_LATENCY != "realistic":
        raise ValueError(f"TOOL_LATENCY must be 'traces', 'realistic' or 'none', got {TOOL_LATENCY!r}")
    await asyncio.sleep(latency_s(tool_name, args))


# -- documents ------------------------------------------------------------------------------------------------
STOP_WORDS = frozenset(
    "a an and are at by for from has how in is it its of on or the to was what which".split()
)


class Hit(BaseModel):
    doc_id: str
    title: str
    score: float
    snippet: str


def _terms(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP_WORDS]


@functools.lru_cache(maxsize=1)
def load_docs() -> dict[str, str]:
    """Every document of ``DOCS_DIR`` by id (the file name without its suffix), sorted by id."""
    paths = sorted(p for p in DOCS_DIR.iterdir() if p.suffix in (".md", ".txt"))
    return {p.stem: p.read_text(encoding="utf-8") for p in paths}


def _title(text: str, doc_id: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first.lstrip("# ").strip() or doc_id


def search(query: str, k: int = 3) -> list[Hit]:
    """BM25 (k1 = 1.2, b = 0.75) over ``load_docs()``; documents sharing no term are left out; ties by id.
    A hit's snippet is the paragraph (or heading) of the document that shares the most query terms."""
    if k < 1:
        raise DocumentError(f"k must be >= 1, got {k}", tool="search_docs")
    q = set(_terms(query))
    if not q:
        raise DocumentError(f"the query {query!r} has no searchable words", tool="search_docs")
    docs = {doc_id: _terms(text) for doc_id, text in load_docs().items()}
    n = len(docs)
    avg_len = sum(len(t) for t in docs.values()) / n
    df = {term: sum(term in set(t) for t in docs.values()) for term in q}
    hits = []
    for doc_id, terms in docs.items():
        score = 0.0
        for term in q:
            tf = terms.count(term)
            if tf:
                idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                score += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len(terms) / avg_len))
        if score > 0:
            text = load_docs()[doc_id]
            paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
            snippet = max(paragraphs, key=lambda p: len(q & set(_terms(p))))
            hits.append(
                Hit(doc_id=doc_id, title=_title(text, doc_id), score=round(score, 4), snippet=snippet)
            )
    hits.sort(key=lambda h: (-h.score, h.doc_id))
    return hits[:k]


@tool
async def search_docs(query: str, k: int = 3) -> list[Hit]:
    """Search the reference documents (cities, chemical elements, mountains, units, people) by keywords.

    Args:
        query: keywords to look for, e.g. "Quito elevation".
        k: how many hits to return, best first.
    """
    await _wait("search_docs", query=query, k=k)
    return search(query, k)


@tool
async def read_doc(doc_id: str) -> str:
    """Read the full text of one reference document.

    Args:
        doc_id: the id a search_docs hit gave, e.g. "cities_nordic".
    """
    await _wait("read_doc", doc_id=doc_id)
    docs = load_docs()
    if doc_id not in docs:
        raise DocumentError(f"no document {doc_id!r} (known: {', '.join(docs)})", tool="read_doc")
    return docs[doc_id]


# -- calculator -----------------------------------------------------------------------------------------------
_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
MAX_EXPRESSION_CHARS = 500


def evaluate(expression: str) -> float:
    """Evaluate arithmetic: numbers, + - * / % **, unary minus and parentheses (thousands separators as in
    ``1,234.5`` are accepted). ``ExpressionError`` for anything else, division by zero or overflow."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"expression longer than {MAX_EXPRESSION_CHARS} characters", tool="calculator")
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", expression.strip())
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ExpressionError(f"cannot parse {expression!r} as arithmetic", tool="calculator") from None
    try:
        value = _eval(tree.body, expression)
    except ZeroDivisionError:
        raise ExpressionError(f"division by zero in {expression!r}", tool="calculator") from None
    except OverflowError:
        raise ExpressionError(f"{expression!r} overflows a float", tool="calculator") from None
    if isinstance(value, complex) or not math.isfinite(value):
        raise ExpressionError(f"{expression!r} has no finite real value", tool="calculator")
    return float(value)


def _eval(node: ast.AST, expression: str) -> float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, expression), _eval(node.right, expression)
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand, expression))
    what = type(node.op).__name__ if isinstance(node, (ast.BinOp, ast.UnaryOp)) else type(node).__name__
    hint = " (use ** for powers)" if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor) else ""
    raise ExpressionError(
        f"unsupported {what} in {expression!r}: only numbers, + - * / % **, unary minus and parentheses{hint}",
        tool="calculator",
    )


@tool
async def calculator(expression: str) -> float:
    """Evaluate an arithmetic expression: numbers, + - * / % ** and parentheses.

    Args:
        expression: e.g. "(2102650 + 3878100) / 2".
    """
    await _wait("calculator", expression=expression)
    return evaluate(expression)


# -- units ----------------------------------------------------------------------------------------------------
UNITS: dict[str, tuple[str, float]] = {  # unit -> (quantity, size in the quantity's base unit)
    "m": ("length", 1.0),
    "km": ("length", 1000.0),
    "mi": ("length", 1609.344),
    "ft": ("length", 0.3048),
    "kg": ("mass", 1.0),
    "g": ("mass", 0.001),
    "lb": ("mass", 0.45359237),
    "s": ("time", 1.0),
    "min": ("time", 60.0),
    "h": ("time", 3600.0),
    "c": ("temperature", 1.0),
    "f": ("temperature", 1.0),
    "k": ("temperature", 1.0),
}
UNIT_ALIASES = {
    "meter": "m", "meters": "m", "metre": "m", "metres": "m", "kilometer": "km", "kilometers": "km",
    "kilometre": "km", "kilometres": "km", "mile": "mi", "miles": "mi", "foot": "ft", "feet": "ft",
    "kilogram": "kg", "kilograms": "kg", "gram": "g", "grams": "g", "pound": "lb", "pounds": "lb", "lbs": "lb",
    "sec": "s", "second": "s", "seconds": "s", "minute": "min", "minutes": "min", "hour": "h", "hours": "h",
    "hr": "h", "celsius": "c", "fahrenheit": "f", "kelvin": "k",
}  # fmt: skip


def _unit(name: str) -> str:
    key = name.strip().lower().lstrip("°")
    key = UNIT_ALIASES.get(key, key)
    if key not in UNITS:
        raise UnitError(f"unknown unit {name!r} (known: m, km, mi, ft, kg, g, lb, C, F, K, s, min, h)",
                        tool="convert_units")  # fmt: skip
    return key


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit``; ``UnitError`` for unknown or incompatible units
    and for temperatures below absolute zero."""
    src, dst = _unit(from_unit), _unit(to_unit)
    (q_src, size_src), (q_dst, size_dst) = UNITS[src], UNITS[dst]
    if q_src != q_dst:
        raise UnitError(
            f"cannot convert {from_unit!r} ({q_src}) to {to_unit!r} ({q_dst})", tool="convert_units"
        )
    if q_src != "temperature":
        return value * size_src / size_dst
    kelvin = {"c": value + 273.15, "f": (value - 32.0) * 5.0 / 9.0 + 273.15, "k": value}[src]
    if kelvin < 0:
        raise UnitError(f"{value} {from_unit} is below absolute zero", tool="convert_units")
    return {"c": kelvin - 273.15, "f": (kelvin - 273.15) * 9.0 / 5.0 + 32.0, "k": kelvin}[dst]


@tool
async def convert_units(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a value between units of length (m, km, mi, ft), mass (kg, g, lb), temperature (C, F, K) or
    time (s, min, h).

    Args:
        value: the number to convert.
        from_unit: its unit, e.g. "m".
        to_unit: the unit wanted, e.g. "ft".
    """
    await _wait("convert_units", value=value, from_unit=from_unit, to_unit=to_unit)
    return convert(value, from_unit, to_unit)


# -- tables ---------------------------------------------------------------------------------------------------
def table_names() -> list[str]:
    """The tables ``lookup`` knows: the CSV files of ``DATA_DIR``."""
    return sorted(p.stem for p in DATA_DIR.glob("*.csv"))


def _cell(text: str) -> str | float | int:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


@functools.cache
def load_table(table: str) -> dict[str, dict[str, str | float | int]]:
    """Rows of ``DATA_DIR/<table>.csv`` by their ``name`` column, cells as int, float or str."""
    if table not in table_names():
        raise LookupMissError(f"no table {table!r} (known: {', '.join(table_names())})", tool="lookup")
    with open(DATA_DIR / f"{table}.csv", newline="", encoding="utf-8") as f:
        return {row["name"]: {k: _cell(v) for k, v in row.items()} for row in csv.DictReader(f)}


def lookup_value(table: str, key: str, field: str) -> str | float | int:
    """``field`` of the row ``key`` (matched case-insensitively) of ``table``; ``LookupMissError`` otherwise."""
    rows = load_table(table)
    name = next((n for n in rows if n.lower() == key.strip().lower()), None)
    if name is None:
        raise LookupMissError(f"table {table!r} has no key {key!r} (keys: {', '.join(rows)})", tool="lookup")
    row = rows[name]
    if field not in row or field == "name":
        fields = ", ".join(f for f in row if f != "name")
        raise LookupMissError(f"table {table!r} has no field {field!r} (fields: {fields})", tool="lookup")
    return row[field]


@tool
async def lookup(table: str, key: str, field: str) -> str | float | int:
    """Look up one fact in a table: "cities" (country, population, elevation_m, area_km2), "elements"
    (symbol, atomic_number, atomic_mass, melting_point_c) or "mountains" (country, height_m, first_ascent_year).

    Args:
        table: "cities", "elements" or "mountains".
        key: the row's name, e.g. "Paris", "Gold", "K2".
        field: the column, e.g. "population".
    """
    await _wait("lookup", table=table, key=key, field=field)
    return lookup_value(table, key, field)


AGENT_TOOLS: list[Tool] = [search_docs, read_doc, calculator, convert_units, lookup]


def register_agent_tools(registry: ToolRegistry | None = None) -> ToolRegistry:
    """Register ``AGENT_TOOLS`` in ``registry`` (the default registry when ``None``) and return it."""
    registry = default_registry if registry is None else registry
    for t in AGENT_TOOLS:
        registry.register(t)
    return registry
