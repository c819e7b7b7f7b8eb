"""Few-shot examples for the planner and the ReAct agent over ``examples/agent_tools.py``'s tools.

    Planner(AGENT_TOOLS, examples=PLAN_EXAMPLES)      ReActAgent(AGENT_TOOLS, examples=REACT_EXAMPLES)

How they were written: by hand, for these tools and their data (``examples/data/*.csv``, ``examples/docs/``),
as a fixed set chosen before any benchmark run that uses them and not tuned on its results. They are not drawn
from ``bench/agent_questions.py``: its questions are a sum, a mean, a converted sum, a largest or a smallest of
one field over 2-6 rows of one table; these are a ratio of two fields of one row, one value converted, a
difference of two years, and a document search beside a lookup. ``tests/agents/test_fewshot.py`` checks that
no example question is one of the benchmark's or fits one of its templates, that every plan and turn parses
and passes the grammars, that every call's arguments fit the tool's JSON schema, and that every observation
shown is what the tool returns (``TOOL_LATENCY = "none"``).

Both agents get the same four questions (as LLMCompiler gives its planner and its ReAct baseline the same
questions): the planner as plans (LLMCompiler's format, no observations), ReAct as Thought / Action /
Observation traces (the ReAct paper's), each observation as ``react.observation_text`` shows the tool's value.
"""

from __future__ import annotations

from tether.agents.fewshot import PlanExample, ReActExample, ReActStep

DENSITY = "How many people live in Nairobi per square kilometre?"
FAHRENHEIT = "What is the melting point of Tin in Fahrenheit?"
YEARS = "How many years after Mont Blanc was the Matterhorn first climbed?"
WHICH_FIRST = "Which came first: the publication of the periodic table or the first ascent of the Matterhorn?"

PLAN_EXAMPLES: tuple[PlanExample, ...] = (
    PlanExample(
        DENSITY,
        "Thought: the population and the area are independent lookups\n"
        '1. lookup(table="cities", key="Nairobi", field="population")\n'
        '2. lookup(table="cities", key="Nairobi", field="area_km2")\n'
        "Thought: divide the population by the area\n"
        '3. calculator(expression="${1} / ${2}")\n'
        "4. join()\n"
        "<END_OF_PLAN>",
    ),
    PlanExample(
        FAHRENHEIT,
        "Thought: look up the melting point in C, then convert it\n"
        '1. lookup(table="elements", key="Tin", field="melting_point_c")\n'
        '2. convert_units(value=$1, from_unit="C", to_unit="F")\n'
        "3. join()\n"
        "<END_OF_PLAN>",
    ),
    PlanExample(
        YEARS,
        "Thought: both years at once, then the difference\n"
        '1. lookup(table="mountains", key="Mont Blanc", field="first_ascent_year")\n'
        '2. lookup(table="mountains", key="Matterhorn", field="first_ascent_year")\n'
        '3. calculator(expression="${2} - ${1}")\n'
        "4. join()\n"
        "<END_OF_PLAN>",
    ),
    PlanExample(
        WHICH_FIRST,
        "Thought: the docs say when the table was published; the table has the ascent\n"
        '1. search_docs(query="periodic table published", k=1)\n'
        '2. lookup(table="mountains", key="Matterhorn", field="first_ascent_year")\n'
        "Thought: join() compares the two years\n"
        "3. join()\n"
        "<END_OF_PLAN>",
    ),
)

_PERIODIC_HIT = (
    '[{"doc_id": "people", "title": "People of science and exploration", "score": 7.6581, "snippet": '
    '"Dmitri Mendeleev (1834-1907) published the periodic table of the elements in 1869, ordering the '
    'elements by\\natomic mass and leaving gaps for elements not yet discovered."}]'
)

REACT_EXAMPLES: tuple[ReActExample, ...] = (
    ReActExample(
        DENSITY,
        (
            ReActStep(
                "I need the population of Nairobi.",
                'lookup(table="cities", key="Nairobi", field="population")',
                "4397073",
            ),
            ReActStep(
                "Now I need its area.", 'lookup(table="cities", key="Nairobi", field="area_km2")', "696"
            ),
            ReActStep(
                "I divide the population by the area.",
                'calculator(expression="4397073 / 696")',
                "6317.633620689655",
            ),
            ReActStep("About 6317.6 people live on each square kilometre.", "Finish(6317.6)"),
        ),
    ),
    ReActExample(
        FAHRENHEIT,
        (
            ReActStep(
                "I need the melting point of Tin in C.",
                'lookup(table="elements", key="Tin", field="melting_point_c")',
                "231.93",
            ),
            ReActStep(
                "I convert 231.93 C to F.",
                'convert_units(value=231.93, from_unit="C", to_unit="F")',
                "449.474",
            ),
            ReActStep("Tin melts at 449.474 F.", "Finish(449.474)"),
        ),
    ),
    ReActExample(
        YEARS,
        (
            ReActStep(
                "I need the year Mont Blanc was first climbed.",
                'lookup(table="mountains", key="Mont Blanc", field="first_ascent_year")',
                "1786",
            ),
            ReActStep(
                "Now the year of the Matterhorn.",
                'lookup(table="mountains", key="Matterhorn", field="first_ascent_year")',
                "1865",
            ),
            ReActStep("I subtract 1786 from 1865.", 'calculator(expression="1865 - 1786")', "79"),
            ReActStep("The Matterhorn was first climbed 79 years after Mont Blanc.", "Finish(79)"),
        ),
    ),
    ReActExample(
        WHICH_FIRST,
        (
            ReActStep(
                "I search the docs for when the periodic table was published.",
                'search_docs(query="periodic table published", k=1)',
                _PERIODIC_HIT,
            ),
            ReActStep(
                "It was published in 1869. Now the year the Matterhorn was first climbed.",
                'lookup(table="mountains", key="Matterhorn", field="first_ascent_year")',
                "1865",
            ),
            ReActStep(
                "1865 is before 1869, so the ascent came first.",
                'Finish("the first ascent of the Matterhorn")',
            ),
        ),
    ),
)
