"""The planner's plan language (LLMCompiler-style): parsing, streaming, formatting and a constraining
grammar. See docs/agents.md, "Plan language"."""

from tether.agents.planner.format import format_plan
from tether.agents.planner.grammar import PlanGrammarError, plan_grammar
from tether.agents.planner.parse import parse_plan
from tether.agents.planner.plan import PlanError, PlanTask, RefString, TaskRef, resolve_args
from tether.agents.planner.stream import PlanStreamParser

__all__ = [
    "PlanError",
    "PlanGrammarError",
    "PlanStreamParser",
    "PlanTask",
    "RefString",
    "TaskRef",
    "format_plan",
    "parse_plan",
    "plan_grammar",
    "resolve_args",
]
