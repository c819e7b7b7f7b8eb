"""The compiler's validation pass: each error names the node (and the workflow line) and the reason."""

from __future__ import annotations

import textwrap

import pytest

from tether.dag import LLMCall, Program, ToolCall, compile_program, parse_workflow
from tether.dag.errors import (
    CycleError,
    DagError,
    DuplicateNodeError,
    OutputSchemaError,
    ToolArgumentsError,
    ToolNotFoundError,
    UnknownReferenceError,
)
from tether.tools import ToolRegistry

REGISTRY = ToolRegistry()
REGISTRY.load("tests.dag.dag_tools")


def compile_yaml(text: str):
    program = parse_workflow(textwrap.dedent(text), path="wf.yaml")
    return compile_program(program, REGISTRY)


def error_of(text: str, kind: type[DagError]) -> DagError:
    with pytest.raises(kind) as info:
        compile_yaml(text)
    return info.value


def test_a_valid_program_compiles() -> None:
    compiled = compile_yaml(
        """\
        inputs: {q: string}
        nodes:
          - {id: s, tool: search, args: {query: "${inputs.q}"}}
          - {id: f, tool: fetch, args: {url: "${s.output[0].url}"}}
        outputs: {page: "${f.output}"}
        """
    )
    assert compiled.order == ["s", "f"]


def test_cycles_are_named_with_their_nodes() -> None:
    err = error_of(
        """\
        nodes:
          - {id: a, tool: count, args: {text: "${c.output}"}}
          - {id: b, tool: count, args: {text: "${a.output}"}}
          - {id: c, tool: fetch, args: {url: "x"}, depends: [b]}
          - {id: d, tool: fetch, args: {url: "${a.output}"}}
        """,
        CycleError,
    )
    assert err.cycle == ("a", "b", "c")
    assert str(err) == "wf.yaml:2: dependency cycle: a -> b -> c -> a"


def test_a_node_referencing_itself_is_a_cycle() -> None:
    err = error_of("nodes:\n  - {id: a, tool: fetch, args: {url: '${a.output}'}}\n", CycleError)
    assert err.cycle == ("a",) and str(err) == "wf.yaml:2: dependency cycle: a -> a"


@pytest.mark.parametrize(
    ("node", "message"),
    [
        (
            "{id: a, tool: fetch, args: {url: '${nope.output}'}}",
            "reference ${nope.output}: no node named 'nope'",
        ),
        (
            "{id: a, tool: fetch, args: {url: '${inputs.q}'}}",
            "reference ${inputs.q}: no input named 'q' (inputs: n)",
        ),
        (
            "{id: a, tool: fetch, args: {url: x}, depends: [ghost]}",
            "reference depends: ghost: no node has this id",
        ),
        (
            "{id: a, tool: fetch, args: {url: '${s.output[0].link}'}}",
            "reference ${s.output[0].link}: .link: no such field (fields: url, score)",
        ),
        (
            "{id: a, tool: fetch, args: {url: '${s.output.url}'}}",
            "reference ${s.output.url}: .url: the value is array, not an object",
        ),
        (
            "{id: a, tool: fetch, args: {url: '${inputs.n.x}'}}",
            "reference ${inputs.n.x}: .x: the value is integer, not an object",
        ),
        (
            "{id: a, tool: fetch, args: {url: '${l.output.x}'}}",
            "reference ${l.output.x}: .x: the value is string, not an object",
        ),
    ],
)
def test_unknown_references(node: str, message: str) -> None:
    text = (
        "inputs: {n: integer}\nnodes:\n"
        "  - {id: s, tool: search, args: {query: q}}\n"
        "  - {id: l, llm: {prompt: hi}}\n"
        f"  - {node}\n"
    )
    err = error_of(text, UnknownReferenceError)
    assert str(err) == f"wf.yaml:5: node 'a': {message}" and err.node == "a"


def test_unknown_output_reference() -> None:
    err = error_of(
        "nodes:\n  - {id: a, tool: count, args: {text: x}}\noutputs:\n  n: ${b.output}\n",
        UnknownReferenceError,
    )
    assert str(err) == "wf.yaml:4: outputs: reference ${b.output}: output 'n': no node named 'b'"


def test_llm_output_fields_are_checked_against_the_schema() -> None:
    text = """\
        nodes:
          - id: plan
            llm:
              prompt: plan it
              output: {type: object, properties: {steps: {type: array, items: {type: string}}}}
          - {id: a, tool: fetch, args: {url: "${plan.output.steps[0]}"}}
          - {id: b, tool: fetch, args: {url: "${plan.output.stops[0]}"}}
        """
    err = error_of(text, UnknownReferenceError)
    assert (
        str(err)
        == "wf.yaml:7: node 'b': reference ${plan.output.stops[0]}: .stops: no such field (fields: steps)"
    )


def test_unknown_tools() -> None:
    err = error_of("nodes:\n  - {id: a, tool: serch, args: {}}\n", ToolNotFoundError)
    assert str(err) == "wf.yaml:2: node 'a': unknown tool 'serch' (registered: count, fetch, search, untyped)"
    err = error_of("nodes:\n  - {id: a, llm: {prompt: p, tools: [browse]}}\n", ToolNotFoundError)
    assert err.node == "a" and err.tool == "browse"


@pytest.mark.parametrize(
    ("args", "field", "reason"),
    [
        ("{query: q, k: '3'}", "k", "Input should be a valid integer (got '3')"),
        ("{k: 3}", "query", "missing required argument"),
        ("{query: q, limit: 3}", "limit", "unexpected argument (expected one of: query, k)"),
        ("{query: 7}", "query", "Input should be a valid string (got 7)"),
    ],
)
def test_arguments_that_fail_the_schema(args: str, field: str, reason: str) -> None:
    err = error_of(f"nodes:\n  - {{id: a, tool: search, args: {args}}}\n", ToolArgumentsError)
    assert err.field == field and err.tool == "search"
    assert str(err) == f"wf.yaml:2: node 'a': tool 'search': argument '{field}': {reason}"


def test_arguments_bound_at_run_time_are_not_checked_yet() -> None:
    compile_yaml(
        "inputs: {k: string}\nnodes:\n  - {id: a, tool: search, args: {query: q, k: '${inputs.k}'}}\n"
    )


def test_duplicate_ids_in_a_program() -> None:
    program = Program("p", nodes=[ToolCall(id="a", tool="count", args={"text": "x"})])
    with pytest.raises(DuplicateNodeError, match="duplicate node id 'a'"):
        program.add_node(LLMCall(id="a", prompt="hi"))


def test_bad_output_schema() -> None:
    err = error_of("nodes:\n  - {id: a, llm: {prompt: p, output: {type: tensor}}}\n", OutputSchemaError)
    assert str(err) == "wf.yaml:2: node 'a': output schema: AOutput: unsupported type 'tensor'"


def test_tool_checks_are_skipped_without_a_registry() -> None:
    program = parse_workflow("nodes:\n  - {id: a, tool: remote_only, args: {anything: 1}}\n")
    assert compile_program(program, None).order == ["a"]
