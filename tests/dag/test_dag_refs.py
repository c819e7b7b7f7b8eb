"""References: parsing, templates (typed values vs text), walking into values."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from tether.dag.refs import (
    Ref,
    RefResolutionError,
    RefSyntaxError,
    compile_template,
    find_refs,
    parse_ref,
    static_prefix,
    walk,
)


class Doc(BaseModel):
    title: str
    tags: list[str]


@pytest.mark.parametrize(
    ("body", "ref"),
    [
        ("inputs.topic", Ref("inputs", "topic")),
        ("search.output", Ref("node", "search")),
        ("search.output[0].url", Ref("node", "search", (0, "url"))),
        ("plan.output.steps[-1].args.q", Ref("node", "plan", ("steps", -1, "args", "q"))),
        (" inputs.cfg.depth ", Ref("inputs", "cfg", ("depth",))),
        ("a-b.output[ 2 ]", Ref("node", "a-b", (2,))),
    ],
)
def test_parse(body: str, ref: Ref) -> None:
    assert parse_ref(body) == ref


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("search", "expected ${inputs.NAME} or ${NODE.output}"),
        ("search.result", "a node's value is ${search.output}, not ${search.result}"),
        ("search.output.", "cannot parse '.'"),
        ("search.output[x]", "cannot parse '[x]'"),
        ("1abc.output", "expected"),
    ],
)
def test_parse_errors(body: str, message: str) -> None:
    with pytest.raises(
        RefSyntaxError, match=message.replace("$", r"\$").replace("[", r"\[").replace(".", r"\.")
    ):
        parse_ref(body)


def test_text_form() -> None:
    assert Ref("node", "plan", ("steps", 0, "q")).text == "${plan.output.steps[0].q}"
    assert str(Ref("inputs", "x")) == "${inputs.x}"


VALUES = {"search": [{"url": "u0"}, {"url": "u1"}], "doc": Doc(title="T", tags=["a", "b"]), "n": 3}


def lookup(ref: Ref):
    return walk(VALUES[ref.name], ref.path)


def test_a_whole_reference_binds_the_typed_value() -> None:
    assert compile_template("${doc.output}").render(lookup) is VALUES["doc"]
    assert compile_template("${n.output}").render(lookup) == 3
    assert compile_template("${doc.output.tags[1]}").render(lookup) == "b"


def test_references_inside_text_are_spliced_as_text() -> None:
    t = compile_template("n=${n.output} doc=${doc.output} url=${search.output[1].url}")
    assert t.render(lookup) == 'n=3 doc={"title":"T","tags":["a","b"]} url=u1'


def test_nested_structures_and_escapes() -> None:
    value = {"a": ["${n.output}", {"b": "x ${doc.output.title}"}], "c": 1, "lit": "$${n.output}"}
    t = compile_template(value)
    assert [r.text for r in t.refs] == ["${n.output}", "${doc.output.title}"]
    assert t.render(lookup) == {"a": [3, {"b": "x T"}], "c": 1, "lit": "${n.output}"}
    assert find_refs({"k": ("${inputs.x}",)}) == (Ref("inputs", "x"),)
    assert find_refs("plain") == ()


def test_unterminated_reference() -> None:
    with pytest.raises(RefSyntaxError, match="unterminated reference"):
        compile_template("x ${n.output")


def test_static_prefix() -> None:
    assert static_prefix("You are helpful. Task: ${inputs.t} now") == "You are helpful. Task: "
    assert static_prefix("cost $${x} then ${inputs.t}") == "cost ${x} then "
    assert static_prefix("no refs") == "no refs"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ((5,), r"index \[5\] is out of range: the value has 2 items"),
        ((0, "title"), r"\.title: \[0\] has no key 'title' \(keys: url\)"),
        (("url",), r"\.url: the value is a list without a field 'url'"),
    ],
)
def test_walk_errors(path: tuple, message: str) -> None:
    with pytest.raises(RefResolutionError, match=message):
        walk(VALUES["search"], path)
    with pytest.raises(RefResolutionError, match=r"\.nope: the value \(Doc\) has no field 'nope'"):
        walk(VALUES["doc"], ("nope",))
    with pytest.raises(RefResolutionError, match=r"\[0\]: the value is a int, not a list"):
        walk(3, (0,))


def test_escapes_are_undone_inside_constant_lists_and_dicts():
    from tether.dag.refs import compile_template

    value = {"a": ["cost $${x}", 3], "b": {"c": "$${y} and text"}, "d": ("$${z}",)}
    template = compile_template(value)
    assert template.refs == ()
    assert template.render(lambda ref: None) == {
        "a": ["cost ${x}", 3],
        "b": {"c": "${y} and text"},
        "d": ["${z}"],
    }
