"""The layers a setting's value comes from, and the one-line error that names the setting at fault.

Precedence, highest first (as users expect, and as vLLM and uvicorn do)::

    command-line flag  >  $TETHER_<NAME>  >  config file (--config FILE)  >  the command's default  >  the model's

A setting's name is its flag without the dashes, in snake case: ``--max-num-seqs`` is ``max_num_seqs``, read from
``$TETHER_MAX_NUM_SEQS`` and from a config file's ``max_num_seqs`` (or ``max-num-seqs``) key. The command's default
is the rare subcommand that starts elsewhere (``tether bench agents`` loads ``smollm2``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

ENV_PREFIX = "TETHER_"


class SettingsError(ValueError):
    """A setting with a bad value: ``setting`` (its name, ``""`` for a rule across settings), ``source`` (where
    the value came from: ``--flag``, ``$TETHER_NAME`` or ``FILE: name``) and ``reason``. One line; the CLI prints
    it after ``tether <command>:`` and exits 2."""

    def __init__(self, setting: str, source: str, reason: str) -> None:
        self.setting, self.source, self.reason = setting, source, reason
        super().__init__(f"{source}: {reason}" if source else reason)


class TetherSettings(BaseSettings):
    """A group of settings. Each field is one setting: its name, type, default, help (``description``) and
    validation. ``json_schema_extra`` may carry how the CLI spells it (``tether/cli/settings_args.py``):
    ``switches`` (flag -> [value, help]: mutually exclusive flags instead of ``--name VALUE``), ``metavar`` and
    ``group`` (the ``--help`` section)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")
    group: ClassVar[str] = ""  # the --help section of the fields that name none

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)  # no .env file, no secrets folder: flags, TETHER_*, --config

    @classmethod
    def flag(cls, name: str) -> str:
        """The command-line spelling of setting ``name`` (the first of its switches, if it has them)."""
        extra = cls.model_fields[name].json_schema_extra
        switches = extra.get("switches") if isinstance(extra, dict) else None
        return next(iter(switches)) if isinstance(switches, dict) else "--" + name.replace("_", "-")

    @staticmethod
    def env_name(name: str) -> str:
        return ENV_PREFIX + name.upper()

    @classmethod
    def load(
        cls,
        flags: Mapping[str, Any] | None = None,
        file: Mapping[str, Any] | None = None,
        file_name: str = "",
        fallback: Mapping[str, Any] | None = None,
    ) -> Self:
        """The settings from every layer: ``flags`` (the values given on the command line), the environment,
        ``file`` (a config file's keys for this group, read from ``file_name``) and ``fallback`` (the command's
        own defaults). ``SettingsError`` names the first setting at fault and where its value came from."""
        where: dict[str, str] = {}
        merged: dict[str, Any] = {}
        layers = (
            (fallback or {}, cls.flag),
            (file or {}, lambda name: f"{file_name}: {name}"),
            (cls._environment(), lambda name: "$" + cls.env_name(name)),
            (flags or {}, cls.flag),
        )
        for values, source in layers:
            for name, value in values.items():
                merged[name], where[name] = value, source(name)
        try:
            return cls(**merged)
        except ValidationError as exc:
            raise _first_error(exc, where, cls) from None

    @classmethod
    def _environment(cls) -> dict[str, Any]:
        """The ``TETHER_*`` variables of this group's settings (pydantic-settings reads them: prefix, case)."""
        try:
            return {k: v for k, v in EnvSettingsSource(cls)().items() if k in cls.model_fields}
        except SourceError as exc:  # a list setting whose variable does not parse
            raise SettingsError("", "environment", str(exc)) from None


def _first_error(exc: ValidationError, where: Mapping[str, str], cls: type[TetherSettings]) -> SettingsError:
    err = exc.errors(include_url=False)[0]
    name = str(err["loc"][0]) if err["loc"] else ""
    error = err.get("ctx", {}).get("error")
    reason = str(error) if isinstance(error, Exception) else err["msg"][0].lower() + err["msg"][1:]
    if name and "got " not in reason and repr(err["input"]) not in reason:
        reason += f", got {err['input']!r}"
    if name and name not in cls.model_fields:
        return SettingsError(name, where.get(name, ""), "unknown setting")
    return SettingsError(name, where.get(name, cls.flag(name) if name else ""), reason)
