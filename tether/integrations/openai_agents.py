"""The OpenAI Agents SDK on ``tether serve``: each run is one program.

    provider = TetherModelProvider("http://127.0.0.1:8000/v1", program_id=session.session_id)
    result = await Runner.run(agent, question, run_config=provider.run_config(), hooks=provider.hooks())
    # or: result = await run_program(agent, question, provider)   # ends the program however the run ends

``TetherModelProvider`` is a ``ModelProvider`` (``RunConfig.model_provider``) whose models are the SDK's
``OpenAIChatCompletionsModel`` with one change: every call carries the provider's program id and its turn
(``ProgramClient.hints``) in the ``tether`` object of ``ModelSettings.extra_body`` (a ``tether`` object already
there is kept, its fields winning: ``ModelSettings(extra_body={"tether": {"last_turn": True}})``). It serves the
agents whose ``model`` is a name, or unset (then ``model=`` of the provider); an agent given a ``Model`` object
bypasses every provider. The tool a turn calls needs nothing from the client: the server reads it from the reply.

The program ends when the run ends: ``hooks()`` ends it when an agent produces the final output, ``run_program``
also when the run fails (``MaxTurnsExceeded``, an error). Without either, the server's idle reaper ends it after
``--program-idle-timeout``. One provider is one program: make one per run (give them one ``client`` and one
``programs`` to share the connection and the turn counts).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

from agents import Agent, ModelSettings, OpenAIChatCompletionsModel, RunConfig, RunHooks, Runner, RunResult
from agents.models.interface import Model, ModelProvider
from openai import AsyncOpenAI

from tether.integrations.programs import ProgramClient


class NoModelError(ValueError):
    """An agent named no model and its ``TetherModelProvider`` has no ``model`` to fall back on."""


class TetherModelProvider(ModelProvider):
    """The models of one program on the server at ``base_url`` (``.../v1``): ``program_id`` (default: a new
    ``agents-<hex>``), ``model`` for agents that name none, ``client`` (default: a new ``AsyncOpenAI``, closed by
    ``aclose``) and ``programs`` (default: a new ``ProgramClient``)."""

    def __init__(
        self,
        base_url: str,
        *,
        program_id: str | None = None,
        model: str | None = None,
        api_key: str = "none",
        client: AsyncOpenAI | None = None,
        programs: ProgramClient | None = None,
    ) -> None:
        self.program_id = program_id or f"agents-{uuid.uuid4().hex}"
        self.model = model
        self.client = client or AsyncOpenAI(base_url=base_url, api_key=api_key)
        self._owns_client = client is None
        self.programs = programs or ProgramClient(base_url, api_key)

    def get_model(self, model_name: str | None) -> Model:
        name = model_name or self.model
        if not name:
            raise NoModelError("the agent names no model and TetherModelProvider(model=...) is unset")
        return TetherChatCompletionsModel(name, self.client, self)

    def run_config(self, **kwargs: Any) -> RunConfig:
        """A ``RunConfig`` (``kwargs``: its other fields) whose models are this provider's."""
        return RunConfig(model_provider=self, **kwargs)

    def hooks(self) -> EndProgramHooks:
        """Run hooks that end the program when an agent produces the run's final output."""
        return EndProgramHooks(self)

    def settings(self, model_settings: ModelSettings) -> ModelSettings:
        """``model_settings`` with the program's ``tether`` object for its next call (counts the call)."""
        body = dict(model_settings.extra_body or {})
        body["tether"] = self.programs.hints(self.program_id, body.get("tether"))
        return dataclasses.replace(model_settings, extra_body=body)

    async def end_program(self) -> bool:
        """End the program (once: later calls send nothing until it calls the model again); whether the server
        knew it."""
        return await self.programs.aend(self.program_id)

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.close()


class TetherChatCompletionsModel(OpenAIChatCompletionsModel):
    """``OpenAIChatCompletionsModel`` whose calls carry ``provider``'s program (``TetherModelProvider.settings``)."""

    def __init__(self, model: str, client: AsyncOpenAI, provider: TetherModelProvider) -> None:
        super().__init__(model=model, openai_client=client)
        self.provider = provider

    async def get_response(self, system_instructions, input, model_settings, *args, **kwargs):  # type: ignore[override]
        settings = self.provider.settings(model_settings)
        return await super().get_response(system_instructions, input, settings, *args, **kwargs)

    def stream_response(self, system_instructions, input, model_settings, *args, **kwargs) -> AsyncIterator:  # type: ignore[override]
        settings = self.provider.settings(model_settings)
        return super().stream_response(system_instructions, input, settings, *args, **kwargs)


class EndProgramHooks(RunHooks):
    """Ends ``provider``'s program when an agent produces the run's final output."""

    def __init__(self, provider: TetherModelProvider) -> None:
        self.provider = provider

    async def on_agent_end(self, context: Any, agent: Agent, output: Any) -> None:
        await self.provider.end_program()


async def run_program(agent: Agent, input: Any, provider: TetherModelProvider, **kwargs: Any) -> RunResult:
    """``Runner.run(agent, input, **kwargs)`` with ``provider``'s models (in ``kwargs["run_config"]`` when
    given); the program ends when the run ends, with a result or an error."""
    config = dataclasses.replace(kwargs.pop("run_config", None) or RunConfig(), model_provider=provider)
    try:
        return await Runner.run(agent, input, run_config=config, **kwargs)
    finally:
        await provider.end_program()
