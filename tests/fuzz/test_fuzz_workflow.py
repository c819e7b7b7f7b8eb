"""Workflow YAML: random documents and mutations of examples/research.yaml give a typed ``DagError`` that names
the file (and node or line), never another exception."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.fuzz.counts import FUZZ, SCALE, tried
from tether.dag import DagError, compile_program, load_workflow, parse_workflow
from tether.tools import ToolRegistry

pytestmark = pytest.mark.slow  # a hypothesis hunt: hundreds of generated inputs per target

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "research.yaml"
BASE: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
REGISTRY = ToolRegistry()
REGISTRY.load("tools_demo.py", base_dir=EXAMPLE.parent)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True), st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
refs = st.sampled_from(
    [
        "${x.y}",
        "${search.output}",
        "${inputs.nope}",
        "${length.output.x}",
        "${",
        "${}",
        "${search..a}",
        "${search.output[",
        "${summarize.output}",
        "${read_first.output[9].zz}",
        "$${inputs.topic}",
        "${1bad}",
    ]
)


def _check(text: str, compile_too: bool = True) -> None:
    """The property: success, or a ``DagError`` whose message names the file."""
    tried("workflow")
    try:
        program = parse_workflow(text, path=EXAMPLE)
        if compile_too:
            compile_program(program, REGISTRY)
    except DagError as exc:
        assert str(EXAMPLE) in str(exc) or exc.node is not None, str(exc)


@settings(FUZZ, max_examples=150 * SCALE)
@given(st.text(max_size=200))
@example("nodes: [{id: a, tool: search, args: {query: x}}]\n? [1, 2]\n: x\n")
@example("&a [*a]")
def test_random_text(text: str) -> None:
    _check(text)


@settings(FUZZ, max_examples=100 * SCALE)
@given(json_values)
def test_random_documents(doc: Any) -> None:
    _check(yaml.safe_dump(doc))


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


PATHS = [p for p in _paths(BASE) if p]


@st.composite
def mutations(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent = doc
        try:
            for part in path[:-1]:
                parent = parent[part]
            key = path[-1]
            parent[key]  # noqa: B018 - the path may be gone after an earlier mutation
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(parent, (dict, list)):
            continue
        op = draw(st.sampled_from(["drop", "rename", "retype", "ref", "cycle", "tool"]))
        if op == "drop":
            del parent[key]
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = parent.pop(key)
        elif op == "retype":
            parent[key] = draw(json_values)
        elif op == "ref":
            parent[key] = draw(refs)
        elif op == "cycle":
            nodes = doc.get("nodes")
            if isinstance(nodes, list) and nodes and isinstance(nodes[0], dict):
                nodes[0]["depends"] = [draw(st.sampled_from(["length", "summarize", "search", "zz"]))]
        elif op == "tool":
            parent[key] = draw(st.sampled_from(["nope", "fetch", "search", "word_count", ""]))
    return doc


@settings(FUZZ, max_examples=250 * SCALE)
@given(mutations())
def test_mutated_example(doc: dict[str, Any]) -> None:
    _check(yaml.safe_dump(doc, sort_keys=False))


@settings(FUZZ, max_examples=60 * SCALE)
@given(st.binary(max_size=60) | st.builds(lambda n: EXAMPLE.read_bytes()[:n], st.integers(0, 2000)))
@example(b"name: \xff\xfe")  # was a raw UnicodeDecodeError from load_workflow
def test_workflow_files(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    tried("workflow")
    path = tmp_path_factory.mktemp("wf") / "flow.yaml"
    path.write_bytes(raw)
    try:
        compile_program(load_workflow(path), REGISTRY)
    except DagError as exc:
        assert "flow.yaml" in str(exc), exc


def test_the_example_compiles() -> None:
    compiled = compile_program(parse_workflow(EXAMPLE.read_text(), path=EXAMPLE), REGISTRY)
    assert compiled.order[0] == "search"
