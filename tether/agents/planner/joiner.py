"""Reading the joiner's reply: ``Thought: ...`` then ``Action: Finish(<answer>)`` or ``Action: Replan``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_THOUGHT = re.compile(r"Thought:\s*(.*)")
_FINISH = re.compile(r"Action:\s*Finish\((.*)\)?\s*$", re.MULTILINE)
_REPLAN = re.compile(r"Action:\s*Replan\b")


@dataclass(frozen=True)
class JoinerDecision:
    """``answer`` is set for ``Finish``; ``replan`` for ``Replan``; neither when the reply has no action
    (an unconstrained model), and then ``text`` is the whole reply."""

    thought: str
    answer: str | None
    replan: bool
    text: str


def parse_joiner(text: str) -> JoinerDecision:
    thought_m = _THOUGHT.search(text)
    thought = thought_m.group(1).strip() if thought_m else ""
    finish = _FINISH.search(text)
    if finish is not None:
        answer = finish.group(1).strip()
        if answer.endswith(")") and answer.count(")") > answer.count("("):
            answer = answer[:-1].rstrip()
        return JoinerDecision(thought, answer, False, text)
    return JoinerDecision(thought, None, _REPLAN.search(text) is not None, text)
