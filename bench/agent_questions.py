"""A ParallelQA-like question set for the planner-vs-ReAct benchmark, over ``examples/agent_tools.py``'s data.

Each question needs ``k`` independent ``lookup`` calls (distinct rows of one table) and one combining step: a
sum, a mean, a sum after a unit conversion, or picking the row with the largest or smallest value. The
expected answer is computed from the tables the tools read.

    qs = make_questions(k=3, n=20, seed=0)
    qs[0].text, qs[0].expected, qs[0].lookups
    check_answer(qs[0], "... Answer: 5,980,750")
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from typing import NamedTuple

from examples.agent_tools import convert, load_table

MIN_K, MAX_K = 2, 6
REL_TOLERANCE = 0.01


class Lookup(NamedTuple):
    """One ``lookup`` tool call a question needs."""

    table: str
    key: str
    field: str


@dataclass(frozen=True)
class Question:
    """``expected`` is a float for numeric kinds (``sum``, ``mean``, ``convert_sum``) and the row's name for
    ``max`` / ``min``; ``lookups`` are the ``k`` calls, in the order the names appear in ``text``."""

    text: str
    k: int
    expected: str | float
    kind: str
    lookups: tuple[Lookup, ...]

    @property
    def options(self) -> tuple[str, ...]:
        """The row names the question mentions."""
        return tuple(lk.key for lk in self.lookups)


class _Template(NamedTuple):
    kind: str
    table: str
    field: str
    text: str  # ``{names}`` is replaced by the joined names


TEMPLATES = (
    _Template("sum", "cities", "population", "What is the total population of {names}?"),
    _Template("sum", "cities", "area_km2", "What is the combined area, in km2, of {names}?"),
    _Template("sum", "elements", "atomic_mass", "What is the sum of the atomic masses of {names}?"),
    _Template("mean", "cities", "elevation_m", "What is the average elevation, in metres, of {names}?"),
    _Template("mean", "elements", "melting_point_c", "What is the mean melting point, in C, of {names}?"),
    _Template("mean", "mountains", "height_m", "What is the average height, in metres, of {names}?"),
    _Template("max", "cities", "elevation_m", "Which of {names} has the highest elevation?"),
    _Template("max", "cities", "population", "Which of {names} has the largest population?"),
    _Template("max", "mountains", "height_m", "Which of {names} is the tallest?"),
    _Template("max", "elements", "atomic_mass", "Which of {names} has the highest atomic mass?"),
    _Template("min", "cities", "area_km2", "Which of {names} has the smallest area?"),
    _Template("min", "elements", "melting_point_c", "Which of {names} has the lowest melting point?"),
    _Template("min", "mountains", "first_ascent_year", "Which of {names} was first climbed earliest?"),
    _Template(
        "convert_sum", "cities", "elevation_m",
        "Convert the elevations of {names} from metres to feet and add them: what is the total, in feet?",
    ),
    _Template(
        "convert_sum", "mountains", "height_m",
        "Convert the heights of {names} from metres to feet and add them: what is the total, in feet?",
    ),
)  # fmt: skip


def _join(names: list[str]) -> str:
    return " and ".join(names) if len(names) == 2 else ", ".join(names[:-1]) + " and " + names[-1]


def expected_answer(kind: str, values: dict[str, float]) -> str | float:
    """The answer of a ``kind`` question from the looked-up ``values`` (row name -> value); numbers are
    rounded to 6 decimals."""
    if kind == "sum":
        return round(float(sum(values.values())), 6)
    if kind == "mean":
        return round(float(sum(values.values())) / len(values), 6)
    if kind == "convert_sum":
        return round(sum(convert(float(v), "m", "ft") for v in values.values()), 6)
    if kind in ("max", "min"):
        pick = max if kind == "max" else min
        return pick(values, key=lambda name: values[name])
    raise ValueError(f"unknown question kind {kind!r}")


def make_questions(k: int, n: int, seed: int) -> list[Question]:
    """``n`` distinct questions needing ``k`` (2..6) lookups each, the same for the same arguments.
    ``max`` / ``min`` questions never have a tie for the answer."""
    if not MIN_K <= k <= MAX_K:
        raise ValueError(f"k must be in {MIN_K}..{MAX_K}, got {k}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(f"agent-questions:{seed}:{k}")
    seen: set[tuple[int, frozenset[str]]] = set()
    questions: list[Question] = []
    attempts = 0
    while len(questions) < n:
        attempts += 1
        if attempts > 100 * (n + 10):
            raise ValueError(f"cannot make {n} distinct questions with k={k}")
        index = rng.randrange(len(TEMPLATES))
        tpl = TEMPLATES[index]
        rows = load_table(tpl.table)
        names = rng.sample(sorted(rows), k)
        values = {name: rows[name][tpl.field] for name in names}
        if tpl.kind in ("max", "min"):
            target = (max if tpl.kind == "max" else min)(values.values())
            if list(values.values()).count(target) > 1:
                continue
        marker = (index, frozenset(names))
        if marker in seen:
            continue
        seen.add(marker)
        questions.append(
            Question(
                text=tpl.text.format(names=_join(names)),
                k=k,
                expected=expected_answer(tpl.kind, values),
                kind=tpl.kind,
                lookups=tuple(Lookup(tpl.table, name, tpl.field) for name in names),
            )
        )
    return questions


# -- checking answers -------------------------------------------------------------------------------------------
_MARKER = re.compile(r"\banswer\b[\s*_]*(?::|=|\bis\b)", re.IGNORECASE)
_NUMBER = re.compile(
    r"(?<![\w.,])([-−]?)(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|\.\d+)"
    r"(?:\s*(thousand|million|billion)\b)?",
    re.IGNORECASE,
)
_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9}


def _fold(text: str) -> str:
    """Lower case without accents (``Bogotá`` matches ``bogota``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _after_marker(text: str) -> str | None:
    found = list(_MARKER.finditer(text))
    return text[found[-1].end() :] if found else None


def extract_numbers(text: str) -> list[float]:
    """The numbers of ``text`` in order: ``1,234.5``, ``-3``, ``2.5e3``, ``5.98 million``."""
    out = []
    for sign, digits, scale in _NUMBER.findall(text):
        value = float(digits.replace(",", "")) * _SCALE.get(scale.lower(), 1.0)
        out.append(-value if sign else value)
    return out


def extract_number(text: str) -> float | None:
    """The first number after the last ``answer:`` / ``answer is`` marker, else the last number of ``text``."""
    tail = _after_marker(text)
    if tail is not None:
        numbers = extract_numbers(tail)
        if numbers:
            return numbers[0]
    numbers = extract_numbers(text)
    return numbers[-1] if numbers else None


def extract_name(text: str, options: tuple[str, ...]) -> str | None:
    """The option named first after the last answer marker or, without one, in the last sentence that names
    any option (matched as whole words, case- and accent-insensitively)."""
    patterns = {o: re.compile(rf"(?<!\w){re.escape(_fold(o))}(?!\w)") for o in options}

    def first(segment: str) -> str | None:
        folded = _fold(segment)
        found = [(m.start(), o) for o, p in patterns.items() if (m := p.search(folded))]
        return min(found)[1] if found else None

    tail = _after_marker(text)
    if tail is not None and (name := first(tail)) is not None:
        return name
    for sentence in reversed(re.split(r"(?<=[.!?])\s+|\n+", text)):
        if (name := first(sentence)) is not None:
            return name
    return None


def check_answer(question: Question, answer_text: str) -> bool:
    """Whether ``answer_text`` (free text) answers ``question``: a number within 1% of ``expected`` (see
    ``extract_number``), or the expected name (see ``extract_name``)."""
    if isinstance(question.expected, str):
        name = extract_name(answer_text, question.options)
        return name is not None and _fold(name) == _fold(question.expected)
    got = extract_number(answer_text)
    if got is None:
        return False
    return abs(got - question.expected) <= REL_TOLERANCE * abs(question.expected) + 1e-9
