"""References to values of an agent's program: ``NodeHandle`` (a node added to the run, awaitable) and
``Symbolic`` (what awaiting a handle or reading an argument gives while compiling).

Both format as their reference text (``f"{h}"`` is ``"${search_1.output}"``), so an f-string that holds one
makes the call depend on that node; ``h[0]`` / ``h.url`` are sub-references (``${search_1.output[0].url}``).
Using one as a value (``bool``, ``len``, iteration, comparisons, arithmetic, ``int``, ``hash``...) raises:
``HandleUsageError`` for a handle of a running agent (await it), ``ValueDependentError`` while compiling.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, NoReturn

from tether.dag.refs import Ref, RefSyntaxError, node_ref

if TYPE_CHECKING:
    from tether.agents.decorator.context import AgentContext


class Reference:
    """A reference to a program value (a node's output or an input), with a path into it."""

    __slots__ = ("_owner", "_ref")

    def __init__(self, owner: AgentContext, ref: Ref) -> None:
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_ref", ref)

    @property
    def ref(self) -> Ref:
        return self._ref

    @property
    def text(self) -> str:
        """The template text, ``${node.output...}`` or ``${inputs.name...}``."""
        return self._ref.text

    @property
    def node_id(self) -> str | None:
        """The node whose output this refers to (``None`` for a program input)."""
        return self._ref.name if self._ref.source == "node" else None

    # -- text and sub-references -----------------------------------------------------------------------------
    def __str__(self) -> str:
        return self._ref.text

    def __format__(self, spec: str) -> str:
        if spec:
            self._misuse(f"format spec {spec!r}")
        return self._ref.text

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._ref.text}>"

    def __getitem__(self, key: Any) -> Reference:
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            self._misuse(f"[{key!r}] (only a field name or an integer index makes a sub-reference)")
        path = (*self._ref.path, key)
        if self._ref.source == "node":
            try:
                node_ref(self._ref.name, path)  # checks the field name
            except RefSyntaxError as exc:
                self._misuse(str(exc))
        return type(self)(self._owner, Ref(self._ref.source, self._ref.name, path))

    def __getattr__(self, name: str) -> Reference:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{self._ref.text} is a reference; it cannot be assigned to")

    # -- uses as a value -------------------------------------------------------------------------------------
    def _misuse(self, op: str) -> NoReturn:
        raise self._owner.misuse(self, op)

    def __bool__(self) -> bool:
        self._misuse("bool() (an if, while, and/or or not on it)")

    def __len__(self) -> int:
        self._misuse("len()")

    def __iter__(self) -> Any:
        self._misuse("iteration (a for loop, unpacking, list())")

    def __contains__(self, item: Any) -> bool:
        self._misuse("'in'")

    def __int__(self) -> int:
        self._misuse("int()")

    def __float__(self) -> float:
        self._misuse("float()")

    def __complex__(self) -> complex:
        self._misuse("complex()")

    def __index__(self) -> int:
        self._misuse("use as an index")

    def __round__(self, ndigits: int | None = None) -> Any:
        self._misuse("round()")

    def __hash__(self) -> int:
        self._misuse("hash() (a dict key or set member)")

    def __eq__(self, other: object) -> bool:  # type: ignore[override]
        self._misuse("==")

    def __ne__(self, other: object) -> bool:  # type: ignore[override]
        self._misuse("!=")

    def __lt__(self, other: Any) -> bool:
        self._misuse("<")

    def __le__(self, other: Any) -> bool:
        self._misuse("<=")

    def __gt__(self, other: Any) -> bool:
        self._misuse(">")

    def __ge__(self, other: Any) -> bool:
        self._misuse(">=")

    def __neg__(self) -> Any:
        self._misuse("unary -")

    def __pos__(self) -> Any:
        self._misuse("unary +")

    def __abs__(self) -> Any:
        self._misuse("abs()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._misuse("a call")


def _binary(symbol: str) -> Any:
    def op(self: Reference, other: Any) -> Any:
        self._misuse(symbol)

    return op


for _name, _symbol in {
    "add": "+", "sub": "-", "mul": "*", "truediv": "/", "floordiv": "//", "mod": "%", "pow": "**",
    "matmul": "@", "and": "&", "or": "|", "xor": "^", "lshift": "<<", "rshift": ">>",
}.items():  # fmt: skip
    setattr(Reference, f"__{_name}__", _binary(_symbol))
    setattr(Reference, f"__r{_name}__", _binary(_symbol))


class NodeHandle(Reference):
    """A node of a running (or compiling) agent's program, started when it was made. ``await h`` is the
    node's typed value (the value at the path for a sub-reference)."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, Any]:
        return self._owner.resolve(self).__await__()


class Symbolic(Reference):
    """A value known only when the program runs (compile mode): an argument of the agent or an awaited
    handle. It may go into calls (as a reference) and be returned (a program output), not be inspected."""

    __slots__ = ()
