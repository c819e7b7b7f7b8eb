"""``@tool``: a typed tool from a plain (sync or async) function.

The arguments' schema comes from the signature and the docstring as a pydantic model (strict: no coercion
such as ``"3"`` -> ``3``; ``extra="forbid"``: no unknown arguments). Arguments are validated as JSON would be
(lists for tuples, strings for enums and dates, dicts for nested models), so the same call validates the same
way in process, from YAML and from a remote worker. The return annotation types the result.

    @tool
    def search(query: str, k: int = 3) -> list[Hit]:
        '''Search the index.

        Args:
            query: what to look for.
            k: how many hits.
        '''
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import threading
import typing
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pydantic
import pydantic_core
from pydantic import ConfigDict, Field, TypeAdapter

from tether.tools.context import call_hook
from tether.tools.docstrings import parse_docstring
from tether.tools.errors import (
    ToolArgumentError,
    ToolDefinitionError,
    ToolError,
    ToolExecutionError,
    ToolResultError,
)

if TYPE_CHECKING:
    from tether.tools.registry import ToolRegistry

TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")  # no '/', '+', '#': tool names become MQTT topics
SYNC_TOOL_THREADS = 64

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def tool_thread_pool() -> ThreadPoolExecutor:
    """The thread pool sync tools run in (created on first use, shared by every event loop)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(SYNC_TOOL_THREADS, thread_name_prefix="tether-tool")
        return _pool


class Tool:
    """A typed tool; calling it calls the function unchanged (unless ``tether.tools.context.call_hook`` is set).

    Contract: ``validate_args`` raises ``ToolArgumentError`` (naming the argument) or returns the validated
    ``args_model`` instance; ``invoke`` validates, runs the function (sync functions in ``tool_thread_pool``)
    and returns the typed result, raising ``ToolArgumentError``, ``ToolExecutionError`` (wrapping what the
    function raised; a ``ToolError`` it raises passes through) or ``ToolResultError``. ``dump_result`` and
    ``load_result`` convert a result to its JSON-able form and back.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        if not callable(fn):
            raise ToolDefinitionError(f"@tool needs a function, got {fn!r}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "")
        if not TOOL_NAME.match(self.name):
            raise ToolDefinitionError(f"bad tool name {self.name!r}: use letters, digits, '_', '.', '-'")
        if max_concurrency is not None and (isinstance(max_concurrency, bool) or max_concurrency < 1):
            raise ToolDefinitionError(
                f"max_concurrency must be >= 1, got {max_concurrency!r}", tool=self.name
            )
        self.max_concurrency = max_concurrency
        self.is_async = inspect.iscoroutinefunction(fn)
        doc = parse_docstring(inspect.getdoc(fn))
        self.description = description if description is not None else doc.summary
        hints = self._type_hints()
        self.args_model = self._build_args_model(hints, doc.params)
        self.return_type: Any = hints.get("return", inspect.Signature.empty)
        self._result_adapter: TypeAdapter | None = (
            None if self.return_type is inspect.Signature.empty else TypeAdapter(self.return_type)
        )
        self._field_names = tuple(self.args_model.model_fields)
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    # -- construction ---------------------------------------------------------------------------------------
    def _type_hints(self) -> dict[str, Any]:
        try:
            return typing.get_type_hints(self.fn, include_extras=True)
        except Exception as exc:  # noqa: BLE001 - any unresolvable annotation
            raise ToolDefinitionError(f"cannot resolve the annotations: {exc}", tool=self.name) from exc

    def _build_args_model(self, hints: dict[str, Any], docs: dict[str, str]) -> type[pydantic.BaseModel]:
        fields: dict[str, Any] = {}
        for p in inspect.signature(self.fn).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
                raise ToolDefinitionError(
                    f"parameter {p.name!r}: tools take named arguments only (no *args, **kwargs or '/')",
                    tool=self.name,
                )
            default = ... if p.default is p.empty else p.default
            fields[p.name] = (hints.get(p.name, Any), Field(default, description=docs.get(p.name)))
        config = ConfigDict(strict=True, extra="forbid", arbitrary_types_allowed=True)
        model_name = "".join(part.title() for part in re.split(r"[_.-]", self.name)) + "Args"
        try:
            model = pydantic.create_model(model_name, __config__=config, **fields)
        except (pydantic.PydanticUserError, NameError, TypeError) as exc:
            raise ToolDefinitionError(f"cannot build the argument schema: {exc}", tool=self.name) from exc
        model.__doc__ = self.description or None
        return model

    # -- schemas --------------------------------------------------------------------------------------------
    def input_schema(self) -> dict[str, Any]:
        """JSON schema of the arguments (``additionalProperties: false``)."""
        return self.args_model.model_json_schema()

    def output_schema(self) -> dict[str, Any] | None:
        """JSON schema of the return type; ``None`` when the function has no return annotation."""
        return None if self._result_adapter is None else self._result_adapter.json_schema()

    # -- calls ----------------------------------------------------------------------------------------------
    def validate_args(self, args: Mapping[str, Any]) -> pydantic.BaseModel:
        if not isinstance(args, Mapping):
            raise ToolArgumentError(
                self.name, None, f"expected a mapping of arguments, got {type(args).__name__}"
            )
        try:
            try:
                data = pydantic_core.to_json(args)
            except pydantic_core.PydanticSerializationError:
                return self.args_model.model_validate(args, strict=True)  # not JSON-able: validate as is
            return self.args_model.model_validate_json(data, strict=True)
        except pydantic.ValidationError as exc:
            raise _argument_error(self.name, exc.errors(include_url=False)) from None

    def check_partial_args(self, args: Mapping[str, Any], unresolved: set[str]) -> None:
        """Validate what is known before a run: every argument name, every required argument present, and the
        value of each argument not in ``unresolved`` (those are bound at run time). ``ToolArgumentError``."""
        for key in args:
            if key not in self.args_model.model_fields:
                raise ToolArgumentError(
                    self.name,
                    str(key),
                    f"unexpected argument (expected one of: {', '.join(self._field_names)})",
                )
        known = {k: v for k, v in args.items() if k not in unresolved}
        try:
            try:
                self.args_model.model_validate_json(pydantic_core.to_json(known), strict=True)
            except pydantic_core.PydanticSerializationError:
                self.args_model.model_validate(known, strict=True)
        except pydantic.ValidationError as exc:
            errors = [e for e in exc.errors(include_url=False) if not _bound_later(e, unresolved)]
            if errors:
                raise _argument_error(self.name, errors) from None

    async def invoke(self, args: Mapping[str, Any]) -> Any:
        """Validate, run, check the result; see the class docstring for the errors."""
        validated = self.validate_args(args)
        kwargs = {name: getattr(validated, name) for name in self._field_names}
        try:
            if self.is_async:
                result = await self.fn(**kwargs)
            else:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(tool_thread_pool(), functools.partial(self.fn, **kwargs))
        except (ToolError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - the tool's own failure, wrapped with its name
            raise ToolExecutionError(self.name, exc) from exc
        return self.check_result(result)

    def check_result(self, value: Any) -> Any:
        """The result as its annotated type (lax: an int for a float is fine); ``ToolResultError``."""
        if self._result_adapter is None:
            return value
        try:
            return self._result_adapter.validate_python(value)
        except pydantic.ValidationError as exc:
            raise ToolResultError(self.name, _first_error(exc)) from None

    def dump_result(self, value: Any) -> Any:
        """JSON-able form of a result (pydantic models become dicts)."""
        if self._result_adapter is None:
            return pydantic_core.to_jsonable_python(value)
        return self._result_adapter.dump_python(value, mode="json")

    def load_result(self, data: Any) -> Any:
        """The typed value back from ``dump_result``'s form; ``ToolResultError`` if it does not fit."""
        if self._result_adapter is None:
            return data
        try:
            return self._result_adapter.validate_python(data)
        except pydantic.ValidationError as exc:
            raise ToolResultError(self.name, _first_error(exc)) from None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        hook = call_hook.get()
        if hook is not None:  # a front-end (a decorator agent) records the call instead
            return hook(self, args, kwargs, {})
        return self.fn(*args, **kwargs)

    def options(self, **options: Any) -> ToolWithOptions:
        """This tool with per-call options for the front-end that records the call (a decorator agent reads
        ``timeout`` and ``retry``: docs/agents.md), so they never mix with the tool's own arguments:
        ``search.options(timeout=2.0, retry=3)(q)``. Outside a front-end the call is a plain call."""
        return ToolWithOptions(self, options)

    def __repr__(self) -> str:
        kind = "async " if self.is_async else ""
        return f"<{kind}tool {self.name}({', '.join(self._field_names)})>"


class ToolWithOptions:
    """``tool.options(...)``: calling it calls ``tool`` with the option ``values`` handed to the call hook;
    ``.options`` again adds to them."""

    __slots__ = ("tool", "values")

    def __init__(self, tool: Tool, values: dict[str, Any]) -> None:
        self.tool = tool
        self.values = dict(values)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        hook = call_hook.get()
        if hook is not None:
            return hook(self.tool, args, kwargs, dict(self.values))
        return self.tool.fn(*args, **kwargs)

    def options(self, **options: Any) -> ToolWithOptions:
        return ToolWithOptions(self.tool, {**self.values, **options})

    def __repr__(self) -> str:
        return f"<{self.tool!r} with {self.values}>"


def _first_error(exc: pydantic.ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"])
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    got = f" (got {_short(err['input'])})" if err["type"] not in ("missing", "extra_forbidden") else ""
    return f"{loc + ': ' if loc else ''}{err['msg']}{got}{more}"


def _bound_later(err: Any, unresolved: set[str]) -> bool:
    return err["type"] == "missing" and len(err["loc"]) == 1 and err["loc"][0] in unresolved


def _argument_error(tool: str, errors: list[Any]) -> ToolArgumentError:
    err = errors[0]
    field = ".".join(str(p) for p in err["loc"]) or None
    reason = {"missing": "missing required argument", "extra_forbidden": "unexpected argument"}.get(
        err["type"], err["msg"]
    )
    got = "" if err["type"] in ("missing", "extra_forbidden") else f" (got {_short(err['input'])})"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ToolArgumentError(tool, field, f"{reason}{got}{more}")


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    max_concurrency: int | None = None,
    registry: ToolRegistry | None = None,
) -> Any:
    """``@tool`` or ``@tool(name=..., description=..., max_concurrency=..., registry=...)``.

    Returns a ``Tool``. It is registered in ``registry`` when one is given (none by default:
    ``ToolRegistry.load`` collects the tools a module defines, ``default_registry`` is there to opt in).
    """

    def wrap(f: Callable[..., Any]) -> Tool:
        t = Tool(f, name=name, description=description, max_concurrency=max_concurrency)
        if registry is not None:
            registry.register(t)
        return t

    return wrap(fn) if fn is not None else wrap
