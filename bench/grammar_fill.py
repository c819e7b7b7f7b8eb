"""Cost of one xgrammar mask fill inside a long string argument, on SmolLM2's 49,152-token vocabulary:
the agents' grammars as shipped (unbounded strings) against a string rule with bounded repetition
(``schar{0,200}``, what they used before).

    .venv/bin/python bench/grammar_fill.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import xgrammar as xgr  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from examples.agent_tools import AGENT_TOOLS  # noqa: E402
from tether.agents.planner import plan_grammar  # noqa: E402
from tether.agents.react_grammar import react_grammar  # noqa: E402
from tether.runtime.engine.models.sources import checkpoint_dir  # noqa: E402

UNBOUNDED = '"\\"" schar* "\\""'
BOUNDED = '"\\"" schar{0,200} "\\""'
REACT_TEXT = 'Thought: look them up\nAction: lookup(table="cities", key="' + "Paris Berlin Rome Madrid " * 3
PLAN_TEXT = 'Thought: look up\n1. search_docs(query="' + "population of the cities in europe " * 2


def fill_ms(compiler: xgr.GrammarCompiler, grammar: str, tokenizer, text: str) -> tuple[float, float]:
    """(median, max) ms of ``fill_next_token_bitmask`` over the tokens of ``text`` (accepted one by one)."""
    matcher = xgr.GrammarMatcher(compiler.compile_grammar(grammar))
    bitmask = xgr.allocate_token_bitmask(1, 49152)
    times = []
    for token in tokenizer.encode(text, add_special_tokens=False):
        t0 = time.perf_counter()
        matcher.fill_next_token_bitmask(bitmask)
        times.append(1e3 * (time.perf_counter() - t0))
        if not matcher.accept_token(token):
            raise AssertionError(f"the grammar rejected {tokenizer.decode([token])!r}")
    return statistics.median(times), max(times)


def main() -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint_dir("smollm2")))
    compiler = xgr.GrammarCompiler(xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=49152))
    react = react_grammar(AGENT_TOOLS)
    assert 'str ::= "\\"" schar* "\\""' in react
    cases = [
        ("react, as shipped", react, REACT_TEXT),
        ("react, bounded strings", react.replace(f"str ::= {UNBOUNDED}", f"str ::= {BOUNDED}"), REACT_TEXT),
        ("plan, as shipped", plan_grammar(AGENT_TOOLS), PLAN_TEXT),
    ]
    for name, grammar, text in cases:
        median, worst = fill_ms(compiler, grammar, tokenizer, text)
        print(f"{name:24s} mask fill inside a string: median {median:7.2f} ms, max {worst:7.2f} ms")


if __name__ == "__main__":
    main()
