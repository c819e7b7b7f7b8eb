"""Workflow YAML: the schema, and errors that give the file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tether.dag import LLMCall, ToolCall, load_workflow, parse_workflow
from tether.dag.errors import ReferenceSyntaxError, WorkflowSyntaxError

GOOD = textwrap.dedent(
    """\
    name: research
    inputs:
      topic: string
      k: {type: integer, default: 2}
    tools: [dag_tools.py]
    nodes:
      - id: search
        tool: search
        args: {query: "${inputs.topic}", k: "${inputs.k}"}
        timeout: 5
        retry: {attempts: 3, backoff_s: 0.5}
      - id: summarize
        llm:
          messages:
            - {role: system, content: Be brief.}
            - {role: user, content: "Summarize ${search.output}"}
          max_tokens: 32
          temperature: 0.5
          tools: [fetch]
        depends: [audit]
      - id: audit
        llm:
          prompt: "Audit ${inputs.topic}"
          output: {type: object, properties: {ok: {type: boolean}}, required: [ok]}
    outputs:
      summary: ${summarize.output}
      ok: ${audit.output.ok}
    """
)


def test_a_workflow_becomes_a_program(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(GOOD)
    program = load_workflow(path)
    assert program.name == "research" and program.tools == ("dag_tools.py",)
    assert program.inputs["topic"].required and not program.inputs["k"].required
    assert program.inputs["k"].default == 2
    search, summarize, audit = (program.nodes[n] for n in ("search", "summarize", "audit"))
    assert isinstance(search, ToolCall) and search.timeout == 5 and search.retry.attempts == 3
    assert search.retry.delay_before(1) == 0 and search.retry.delay_before(3) == 1.0
    assert isinstance(summarize, LLMCall) and summarize.max_tokens == 32 and summarize.tools == ("fetch",)
    assert [m.role for m in summarize.messages] == ["system", "user"]
    assert isinstance(audit, LLMCall) and audit.prompt == "Audit ${inputs.topic}"
    edges = {(u, v): d["kind"] for u, v, d in program.graph.edges(data=True)}
    assert edges == {("search", "summarize"): "data", ("audit", "summarize"): "order"}
    assert program.source.nodes == {"search": 7, "summarize": 12, "audit": 21}
    assert program.source.outputs == {"summary": 26, "ok": 27}


def error_of(text: str) -> WorkflowSyntaxError:
    with pytest.raises(WorkflowSyntaxError) as info:
        parse_workflow(textwrap.dedent(text), path="wf.yaml")
    return info.value


def test_yaml_syntax_error_gives_the_line() -> None:
    err = error_of(
        """\
        name: x
        nodes:
          - id: a
            tool: t
            args: {q: [1, 2}
        """
    )
    assert err.line == 5 and str(err).startswith("wf.yaml:5: invalid YAML")


def test_duplicate_keys_are_errors() -> None:
    err = error_of(
        """\
        name: x
        nodes:
          - id: a
            tool: t
            tool: u
        """
    )
    assert str(err) == "wf.yaml:5: duplicate key 'tool' (first on line 4)"


def test_duplicate_node_ids_name_both_lines() -> None:
    err = error_of(
        """\
        nodes:
          - id: a
            tool: t
          - id: b
            tool: t
          - id: a
            tool: u
        """
    )
    assert str(err) == "wf.yaml:6: duplicate node id 'a' (first on line 2)" and err.node == "a"


@pytest.mark.parametrize(
    ("node", "line", "message"),
    [
        ("  - id: a\n    tool: t\n    bogus: 1\n", 5, "node 'a': unknown key 'bogus'"),
        ("  - id: a\n    args: {}\n", 3, "node 'a': a node has either 'tool' (with 'args') or 'llm'"),
        ("  - id: a\n    tool: t\n    llm: {prompt: p}\n", 3, "node 'a': a node has either"),
        (
            "  - id: a\n    llm:\n      prompt: p\n      max_tokens: 0\n",
            6,
            "node 'a': max_tokens: Input should be greater",
        ),
        ("  - id: a\n    llm:\n      max_tokens: 3\n", 3, "node 'a': an llm node needs exactly one of"),
        ("  - id: a\n    tool: t\n    timeout: -1\n", 5, "node 'a': timeout: Input should be greater than 0"),
        ("  - id: a b\n    tool: t\n", 3, "node 'a b': id: node id 'a b' must match"),
        (
            "  - id: a\n    llm: {prompt: p}\n    retry: {attempts: 2}\n",
            5,
            "node 'a': 'retry' belongs to tool nodes",
        ),
        (
            "  - id: a\n    tool: t\n    retry: {attempts: 0}\n",
            5,
            "node 'a': retry.attempts: Input should be greater",
        ),
    ],
)
def test_node_errors_give_the_node_and_line(node: str, line: int, message: str) -> None:
    err = error_of("name: x\nnodes:\n" + node)
    assert err.line == line, str(err)
    assert str(err).startswith(f"wf.yaml:{line}: {message}")


def test_top_level_errors() -> None:
    assert str(error_of("name: x\nnode: []\n")).startswith("wf.yaml:2: unknown top-level key 'node'")
    assert str(error_of("name: x\nnodes: []\n")) == "wf.yaml:2: 'nodes' must be a non-empty list"
    assert str(error_of("- a\n")).startswith("wf.yaml:1: a workflow is a mapping")
    err = error_of("name: x\ninputs:\n  k: {type: float}\nnodes:\n  - {id: a, tool: t}\n")
    assert str(err).startswith("wf.yaml:3: input 'k': type: Input should be 'string', 'integer'")


def test_input_names_must_be_referenceable() -> None:
    err = error_of("inputs:\n  my topic: string\nnodes:\n  - {id: a, tool: t}\n")
    assert str(err) == "wf.yaml:2: input name 'my topic' must match [A-Za-z_][A-Za-z0-9_-]*"


def test_yaml_1_2_booleans() -> None:
    program = parse_workflow(
        "nodes:\n  - {id: a, tool: t, args: {flag: yes, on: true}, retry: {on: [error]}}\n"
    )
    node = program.nodes["a"]
    assert node.args == {"flag": "yes", "on": True} and node.retry.on == ("error",)


def test_a_bad_reference_gives_the_node_line() -> None:
    with pytest.raises(ReferenceSyntaxError) as info:
        parse_workflow(
            "name: x\nnodes:\n  - id: a\n    tool: t\n  - id: b\n    tool: t\n    args: {q: '${a.out}'}\n",
            path="wf.yaml",
        )
    assert str(info.value).startswith("wf.yaml:5: node 'b': args: ${a.out}: a node's value is ${a.output}")


def test_missing_file() -> None:
    with pytest.raises(WorkflowSyntaxError, match="cannot read the workflow"):
        load_workflow("/nonexistent/wf.yaml")
