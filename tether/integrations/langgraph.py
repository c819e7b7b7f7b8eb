"""LangGraph on ``tether serve``: each graph thread is one program.

    model = tether_chat_model("http://127.0.0.1:8000/v1", "smollm2", temperature=0)
    graph = build_graph(model)                      # any graph whose nodes call the model (bind_tools works)
    graph.invoke(inputs, tether_config(model, "thread-7"))

``TetherChatOpenAI`` is langchain-openai's ``ChatOpenAI`` with one change: every call made inside a LangGraph run
(or given a config with a ``configurable.thread_id``) carries the thread id as its program id, with its turn
(``ProgramClient.hints``), in the ``tether`` object of ``extra_body``. Calls outside a thread carry no program,
unless their own ``extra_body`` names one. A node may add hints it knows before the call:
``model.bind(tether={"last_turn": True})``. The tool a turn calls needs nothing from the client: the server reads
it from the reply when the call offered tools.

``EndProgramOnFinish`` (in the config ``tether_config`` builds) ends the thread's program when the graph run
that carried it finishes or fails, releasing the KV it pins; a run resumed later on the same thread starts a new
program. ``model.end_program(thread_id)`` ends one explicitly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableConfig, ensure_config
from langchain_openai import ChatOpenAI
from pydantic import PrivateAttr

from tether.integrations.programs import ProgramClient


class TetherChatOpenAI(ChatOpenAI):
    """``ChatOpenAI`` whose calls name their LangGraph thread as their Tether program (module docstring)."""

    _programs: ProgramClient | None = PrivateAttr(default=None)

    @property
    def programs(self) -> ProgramClient:
        """The programs this model's calls run (shared with the models built with the same ``programs``)."""
        if self._programs is None:
            self._programs = ProgramClient(str(self.openai_api_base or ""), _secret(self))
        return self._programs

    def end_handler(self) -> EndProgramOnFinish:
        """A callback that ends a thread's program when the graph run carrying it finishes."""
        return EndProgramOnFinish(self.programs)

    def end_program(self, thread_id: str) -> bool:
        """End the program of ``thread_id`` now; whether the server knew it (``ProgramClient.end``)."""
        return self.programs.end(str(thread_id))

    async def aend_program(self, thread_id: str) -> bool:
        return await self.programs.aend(str(thread_id))

    def invoke(self, input, config=None, *, stop=None, **kwargs):  # type: ignore[override]
        return super().invoke(input, config, stop=stop, **_thread_kwargs(config, kwargs))

    async def ainvoke(self, input, config=None, *, stop=None, **kwargs):  # type: ignore[override]
        return await super().ainvoke(input, config, stop=stop, **_thread_kwargs(config, kwargs))

    def stream(self, input, config=None, *, stop=None, **kwargs) -> Iterator:  # type: ignore[override]
        return super().stream(input, config, stop=stop, **_thread_kwargs(config, kwargs))

    def astream(self, input, config=None, *, stop=None, **kwargs) -> AsyncIterator:  # type: ignore[override]
        return super().astream(input, config, stop=stop, **_thread_kwargs(config, kwargs))

    def _program_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` with ``extra_body`` carrying the call's ``tether`` object: the model's ``extra_body``,
        then the call's, then the thread's program id and turn (fields the caller set win)."""
        kwargs = dict(kwargs)
        thread = kwargs.pop(_THREAD, None)
        body = {**(self.extra_body or {}), **(kwargs.pop("extra_body", None) or {})}
        given = {**(body.get("tether") or {}), **(kwargs.pop("tether", None) or {})}
        if given:
            body["tether"] = given
        if thread is not None or given.get("program_id"):
            body["tether"] = self.programs.hints(thread or "", given)
        return {**kwargs, "extra_body": body} if body else kwargs

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[override]
        return super()._generate(messages, stop, run_manager, **self._program_kwargs(kwargs))

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[override]
        return await super()._agenerate(messages, stop, run_manager, **self._program_kwargs(kwargs))

    def _stream(self, messages, stop=None, run_manager=None, **kwargs) -> Iterator:  # type: ignore[override]
        return super()._stream(messages, stop, run_manager, **self._program_kwargs(kwargs))

    async def _astream(self, messages, stop=None, run_manager=None, **kwargs) -> AsyncIterator:  # type: ignore[override]
        async for chunk in super()._astream(messages, stop, run_manager, **self._program_kwargs(kwargs)):
            yield chunk


_THREAD = "_tether_thread"  # the call's thread, from the public entry points to the request


def _thread_kwargs(config: RunnableConfig | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with the thread of the call's config (a LangGraph node's when the node passes none):
    ``configurable.thread_id``, which LangGraph also copies into ``metadata``."""
    config = ensure_config(config)
    thread = (config.get("configurable") or {}).get(
        "thread_id", (config.get("metadata") or {}).get("thread_id")
    )
    return kwargs if thread is None else {**kwargs, _THREAD: str(thread)}


class EndProgramOnFinish(BaseCallbackHandler):
    """Ends a thread's program when the graph run that carried it (a root run: no parent, with a
    ``thread_id`` in its config) ends, with a result or an error (an interrupt included)."""

    def __init__(self, programs: ProgramClient) -> None:
        self.programs = programs
        self._roots: dict[UUID, str] = {}  # root run -> its thread

    def on_chain_start(
        self,
        serialized: Any,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        thread = (metadata or {}).get("thread_id")
        if parent_run_id is None and thread is not None:
            self._roots[run_id] = str(thread)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id)

    def _finish(self, run_id: UUID) -> None:
        thread = self._roots.pop(run_id, None)
        if thread is not None:
            self.programs.end(thread)


def tether_chat_model(
    base_url: str,
    model: str,
    *,
    api_key: str = "none",
    programs: ProgramClient | None = None,
    **kwargs: Any,
) -> TetherChatOpenAI:
    """A ``TetherChatOpenAI`` for ``model`` on the server at ``base_url`` (``.../v1``); ``kwargs`` are
    ``ChatOpenAI``'s (``temperature``, ``max_tokens``, ...). Models built with the same ``programs`` count
    turns and end programs together (give one to every model of a graph that uses several)."""
    chat = TetherChatOpenAI(model=model, base_url=base_url, api_key=api_key, **kwargs)
    chat._programs = programs or ProgramClient(base_url, api_key)
    return chat


def tether_config(model: TetherChatOpenAI, thread_id: str, **config: Any) -> RunnableConfig:
    """The config of a graph run on thread ``thread_id`` whose program ends when the run finishes: ``config``
    (a ``RunnableConfig``'s other keys) with ``configurable.thread_id`` and ``model``'s ``end_handler``."""
    configurable = {**config.pop("configurable", {}), "thread_id": thread_id}
    callbacks = [*(config.pop("callbacks", None) or []), model.end_handler()]
    return RunnableConfig(**config, configurable=configurable, callbacks=callbacks)


def _secret(chat: ChatOpenAI) -> str | None:
    key = chat.openai_api_key
    return key.get_secret_value() if hasattr(key, "get_secret_value") else None
