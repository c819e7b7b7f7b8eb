"""Command-line flags generated from the settings models (``tether.runtime.settings``), as vLLM generates its
flags from ``EngineArgs``: a setting ``max_num_seqs: int = 256`` with its description is ``--max-num-seqs``
(``type=int``, default 256, the description as help); a ``Literal`` gives ``choices``; a bool
``--name/--no-name``; a tuple a repeatable flag; a field's ``switches`` mutually exclusive flags of fixed values
(``--enforce-eager`` / ``--compile``).

Each generated flag records that the command line gave it, so ``settings_of`` can layer the values: a flag given
beats ``$TETHER_*``, which beats ``--config FILE``, which beats the parser's default (the model's, or the
subcommand's own via ``set_defaults``). ``tether.cli.main`` resolves every group a subcommand takes before it
runs, writing the values back onto the namespace (``args.max_num_seqs`` is the layered value)."""

from __future__ import annotations

import argparse
import types
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic.fields import FieldInfo

from tether.runtime.settings import GROUPS, TetherSettings, read_config
from tether.runtime.settings.file import split_config

GIVEN = "_settings_given"  # the settings the command line named
TAKES = "_settings_groups"  # the settings groups a subcommand takes
RESOLVED = "_settings_resolved"  # group -> its settings, once layered
COMMAND = "_settings_command"  # the subcommand's prog ("tether serve"), for error lines
SECTIONS = {"cluster": "engine replicas on Ray Serve (pip install tether[cluster]; docs/cluster.md)"}
CONFIG_HELP = (
    "read settings from this YAML, TOML or JSON file: the flags' names as keys (max_num_seqs: 64); a flag or a "
    "$TETHER_* variable beats it (docs/settings.md)"
)
S = TypeVar("S", bound=TetherSettings)


def _given(base: type[argparse.Action]) -> type[argparse.Action]:
    """``base`` that also adds its ``dest`` to the namespace's set of settings the command line gave."""

    class Given(base):  # type: ignore[valid-type, misc]
        def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001
            super().__call__(parser, namespace, values, option_string)
            setattr(namespace, GIVEN, getattr(namespace, GIVEN, frozenset()) | {self.dest})

    Given.__name__ = f"Given{base.__name__}"
    return Given


_STORE = _given(argparse._StoreAction)
_CONST = _given(argparse._StoreConstAction)
_APPEND = _given(argparse._AppendAction)
_BOOL = _given(argparse.BooleanOptionalAction)


def add_settings_args(parser: argparse.ArgumentParser, cls: type[TetherSettings]) -> None:
    """One flag per setting of ``cls``, in its group's ``--help`` section (``cls.group``, or the field's own
    ``group``; ``""``: the parser's options); and ``--config FILE`` once per parser."""
    sections: dict[str, Any] = {"": parser}
    for name, field in cls.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        section = str(extra.get("group", cls.group))
        if section not in sections:
            sections[section] = parser.add_argument_group(section, SECTIONS.get(section))
        _add_flag(sections[section], name, field, extra)
    takes = parser.get_default(TAKES) or ()
    if not takes:
        parser.add_argument("--config", metavar="FILE", default=None, help=CONFIG_HELP)
    parser.set_defaults(**{TAKES: (*takes, cls), COMMAND: parser.prog})


def _add_flag(target: Any, name: str, field: FieldInfo, extra: dict[str, Any]) -> None:
    switches = extra.get("switches")
    if switches:
        exclusive = target.add_mutually_exclusive_group()
        for flag, (value, text) in switches.items():
            exclusive.add_argument(
                flag, action=_CONST, const=value, dest=name, default=field.default, help=text
            )
        return
    kind = _bare(field.annotation)
    options: dict[str, Any] = {"dest": name, "default": field.default, "help": field.description}
    if "metavar" in extra:
        options["metavar"] = extra["metavar"]
    if kind is bool:
        options["action"] = _BOOL
    elif get_origin(kind) is tuple:
        options.update(action=_APPEND, type=get_args(kind)[0])
    elif get_origin(kind) is Literal:
        choices = get_args(kind)
        options.update(action=_STORE, type=type(choices[0]), choices=choices)
    else:
        options.update(action=_STORE, type=kind)
    target.add_argument("--" + name.replace("_", "-"), **options)


def _bare(annotation: Any) -> Any:
    """``int`` of ``Annotated[int, ...] | None``: what the command line parses."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            annotation = next(a for a in get_args(annotation) if a is not type(None))
        else:
            return annotation


def settings_of(args: argparse.Namespace, cls: type[S]) -> S:
    """``cls``'s settings for the command ``args`` parsed: its flags given, ``$TETHER_*``, the ``--config``
    file and the parser's defaults, in that order; once resolved, the namespace holds the values and later
    calls return the same object. ``SettingsError`` names the setting at fault and its source."""
    resolved = vars(args).setdefault(RESOLVED, {})
    if cls not in resolved:
        given = getattr(args, GIVEN, frozenset())
        names = [n for n in cls.model_fields if hasattr(args, n)]
        path = getattr(args, "config", None)
        file = split_config(read_config(path), GROUPS, path)[cls] if path else {}
        resolved[cls] = settings = cls.load(
            flags={n: getattr(args, n) for n in names if n in given},
            file=file,
            file_name=str(path),
            fallback={n: getattr(args, n) for n in names if n not in given},
        )
        for name in cls.model_fields:
            setattr(args, name, getattr(settings, name))
    return resolved[cls]


def resolve_settings(args: argparse.Namespace) -> None:
    """Every settings group the subcommand takes (``SettingsError`` before the command starts)."""
    for cls in getattr(args, TAKES, ()):
        settings_of(args, cls)


def command_name(args: argparse.Namespace) -> str:
    return getattr(args, COMMAND, "tether")
