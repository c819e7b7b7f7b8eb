"""``tether serve``'s own settings (the engine's are ``EngineSettings``): the listening socket, the API's rules,
the shutdown, and the Ray Serve replicas. ``server_config()`` builds the frozen ``ServerConfig``, whose defaults
equal these (``tests/cli/test_settings.py`` checks)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic_settings import NoDecode

from tether.runtime.settings.base import TetherSettings
from tether.runtime.settings.checks import above, at_least

if TYPE_CHECKING:
    from tether.runtime.server.serving import ServerConfig


def _known_router(name: str) -> str:
    from tether.runtime.cluster.routers import ROUTERS

    if name not in ROUTERS:
        raise ValueError(f"unknown router {name!r}; known: {', '.join(ROUTERS)}")
    return name


def _names(value: Any) -> Any:
    """``a,b`` (a variable or a file's string) is two names; a list stays one."""
    return tuple(n.strip() for n in value.split(",") if n.strip()) if isinstance(value, str) else value


CLUSTER = {"group": "cluster"}


class ServerSettings(TetherSettings):
    """``ServerConfig``'s settings under their flags' names: ``program_idle_timeout`` is
    ``ServerConfig.program_idle_s``, ``retry_after`` its ``retry_after_s``, ``served_model_name`` its
    ``served_model_names``; ``max_tokens_default`` 0 is its ``None`` (up to the end of the context)."""

    group: ClassVar[str] = ""  # the serve parser's own section
    CONFIG_NAMES: ClassVar[dict[str, str]] = {
        "program_idle_timeout": "program_idle_s",
        "retry_after": "retry_after_s",
        "served_model_name": "served_model_names",
    }

    host: str = Field("127.0.0.1", description="bind address (default: loopback only)")
    port: Annotated[int, AfterValidator(at_least(0))] = Field(8000, description="port to listen on")
    api_key: str | None = Field(
        None,
        description="require 'Authorization: Bearer KEY' on /v1 (default: $TETHER_API_KEY, else none)",
        repr=False,
    )
    served_model_name: Annotated[tuple[str, ...] | None, NoDecode, BeforeValidator(_names)] = Field(
        None,
        description="a name clients use as 'model' (repeatable; default: the --model value)",
        json_schema_extra={"metavar": "NAME"},
    )
    program_idle_timeout: Annotated[float, AfterValidator(above(0))] = Field(
        600.0, description="seconds without a request after which a program is ended and its pins released"
    )
    retry_after: Annotated[int, AfterValidator(at_least(0))] = Field(
        1,
        description="the Retry-After seconds of a 503 sent while the waiting queue is full (--max-num-waiting)",
    )
    max_tokens_default: Annotated[int, AfterValidator(at_least(0))] = Field(
        1024,
        description="the output cap of a request that sets no max_tokens (default: 1024, ServerConfig's; 0: up to "
        "the end of the context)",
    )
    shutdown_timeout: Annotated[float, AfterValidator(at_least(0))] = Field(
        30.0,
        description="on SIGTERM / SIGINT, seconds to let requests in flight finish before they are aborted (the "
        "run then ends as 'aborted', else 'ok')",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = Field(
        "warning", description="uvicorn's log level"
    )
    replicas: Annotated[int, AfterValidator(at_least(1))] | None = Field(
        None, description="run N engine replicas on Ray Serve behind this server", json_schema_extra=CLUSTER
    )
    router: Annotated[str, AfterValidator(_known_router)] = Field(
        "program",
        description="with --replicas: program (Tether's), pow2 (Ray's default), prefix (Ray's "
        "PrefixCacheAffinityRouter) or session (a consistent-hash ring)",
        json_schema_extra=CLUSTER,
    )
    ray_address: str | None = Field(
        None,
        description="with --replicas: join this Ray cluster (auto or host:port); default: start a local one",
        json_schema_extra=CLUSTER,
    )
    replica_cpus: Annotated[float, AfterValidator(above(0))] | None = Field(
        None, description="Ray CPUs per replica (default: --threads, else 1)", json_schema_extra=CLUSTER
    )

    @model_validator(mode="after")
    def _replicas_first(self) -> ServerSettings:
        if self.ray_address is not None and self.replicas is None:
            raise ValueError("--ray-address needs --replicas N")
        return self

    def server_config(self, model: str) -> ServerConfig:
        """The frozen ``ServerConfig``; ``model`` (the engine's ``--model``) is the served name where
        ``served_model_name`` gives none."""
        from tether.runtime.server.serving import ServerConfig

        return ServerConfig(
            self.served_model_name or (model,),
            api_key=self.api_key,
            program_idle_s=self.program_idle_timeout,
            retry_after_s=self.retry_after,
            max_tokens_default=self.max_tokens_default or None,
        )
