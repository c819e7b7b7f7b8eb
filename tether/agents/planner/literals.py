"""Arguments of a numbered task line: Python literals with ``$N`` / ``${N}`` references, parsed with ``ast``.

Only literals are accepted (str, int, float, bool, None, lists, tuples, dicts, and signed numbers) plus
references: bare (``$1``, ``${1}``) where a value goes, or inside a string. ``\\$`` in a string is a literal
dollar (``"\\$5"`` is the text ``$5``); a ``$`` inside a string that starts no reference is kept as is.
Nothing is evaluated: ``ast.parse`` builds the tree and each node is converted by hand.
"""

from __future__ import annotations

import ast
import re
import warnings
from typing import Any

from tether.agents.planner.plan import RefString, TaskRef

_PLACEHOLDER = "__tether_ref_{}__"
_PLACEHOLDER_RE = re.compile(r"__tether_ref_(\d+)__")
_CALL = "__tether_plan_call__"
_REF_AT = re.compile(r"\$(?:(\d+)|\{(\d+)\})")


class ArgsError(ValueError):
    """The arguments text is not a literal argument list (the caller adds the line and task)."""


def _escape_token(text: str) -> str:
    """A private-use character absent from ``text``, standing for ``\\$`` while ``ast`` parses."""
    for code in range(0xE000, 0xF900):
        if chr(code) not in text:
            return chr(code)
    raise ArgsError("cannot escape '\\$' in this line")  # pragma: no cover - 6400 distinct characters


def _rewrite(rest: str, escape: str) -> str:
    """Bare references -> placeholder names; ``\\$`` inside strings -> ``escape``. Strings and comments are
    otherwise copied unchanged (``ast`` reports what is malformed)."""
    out: list[str] = []
    i, n = 0, len(rest)
    while i < n:
        c = rest[i]
        if c in "'\"":
            quote = rest[i : i + 3] if rest[i : i + 3] in ("'''", '"""') else c
            out.append(quote)
            i += len(quote)
            while i < n and not rest.startswith(quote, i):
                if rest[i] == "\\" and i + 1 < n:
                    out.append(escape if rest[i + 1] == "$" else rest[i : i + 2])
                    i += 2
                else:
                    out.append(rest[i])
                    i += 1
            out.append(rest[i : i + len(quote)])
            i += len(quote)
        elif c == "#":
            out.append(rest[i:])
            break
        elif c == "$":
            m = _REF_AT.match(rest, i)
            if m is None:
                raise ArgsError("'$' outside a string must start a reference $N or ${N}")
            out.append(_PLACEHOLDER.format(int(m.group(1) or m.group(2))))
            i = m.end()
        else:
            if rest.startswith("__tether_ref_", i):
                raise ArgsError("names are not literals")
            out.append(c)
            i += 1
    return "".join(out)


def split_refs(text: str, escape: str) -> str | RefString:
    """``text`` with its references split out: a plain ``str`` when it has none, else a ``RefString``.
    ``escape`` (a character or ``"\\\\$"``) stands for a literal dollar."""
    parts: list[str | TaskRef] = []
    buf: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith(escape, i):
            buf.append("$")
            i += len(escape)
            continue
        m = _REF_AT.match(text, i) if text[i] == "$" else None
        if m is None:
            buf.append(text[i])
            i += 1
            continue
        if buf:
            parts.append("".join(buf))
            buf = []
        parts.append(TaskRef(int(m.group(1) or m.group(2))))
        i = m.end()
    if buf:
        parts.append("".join(buf))
    if not any(isinstance(p, TaskRef) for p in parts):
        return "".join(p for p in parts if isinstance(p, str))
    return RefString(tuple(parts))


def _convert(node: ast.AST, escape: str) -> Any:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, str):
            return split_refs(value, escape)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        raise ArgsError(f"{type(value).__name__} literals are not allowed")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = node.operand
        if isinstance(operand, ast.Constant) and type(operand.value) in (int, float):
            return -operand.value if isinstance(node.op, ast.USub) else operand.value
    if isinstance(node, (ast.List, ast.Tuple)):
        if any(isinstance(e, ast.Starred) for e in node.elts):
            raise ArgsError("'*' unpacking is not allowed")
        items = [_convert(e, escape) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise ArgsError("'**' unpacking is not allowed")
        try:
            return {_convert(k, escape): _convert(v, escape) for k, v in zip(node.keys, node.values)}
        except TypeError as exc:  # an unhashable key
            raise ArgsError(f"bad dict key: {exc}") from None
    if isinstance(node, ast.Name):
        m = _PLACEHOLDER_RE.fullmatch(node.id)
        if m:
            return TaskRef(int(m.group(1)))
        raise ArgsError(f"name {node.id!r} is not a literal")
    raise ArgsError(
        f"{type(node).__name__} is not a literal (allowed: str, int, float, bool, None, list, tuple, dict, $N)"
    )


def parse_call_args(rest: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Parse what follows ``tool(`` on a task line (the closing ``)`` included, an optional trailing
    ``# comment`` allowed) into ``(args, kwargs)``. Raises ``ArgsError``."""
    escape = _escape_token(rest)
    source = _CALL + "(" + _rewrite(rest, escape)
    try:
        with warnings.catch_warnings():  # "\," warns (invalid escape): the same plan parses under -W error
            warnings.simplefilter("ignore")
            tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ArgsError(f"cannot parse the arguments: {exc.msg}") from None
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == _CALL):
        raise ArgsError("expected exactly one call 'tool(args)'")
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        raise ArgsError("'*' and '**' unpacking are not allowed")
    args = tuple(_convert(a, escape) for a in call.args)
    kwargs = {k.arg: _convert(k.value, escape) for k in call.keywords if k.arg is not None}
    return args, kwargs
