"""A config file (``--config FILE``): one flat mapping of setting names to values, in YAML (``.yaml``, ``.yml``),
TOML (``.toml``) or JSON (``.json``). Keys are the settings' names in snake or kebab case (``max_num_seqs`` or
``max-num-seqs``, as the flag); engine and server settings share the file, so one file serves every command::

    model: smollm2
    policy: tether
    max-num-seqs: 64
    port: 8001
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import tomllib

from tether.runtime.settings.base import SettingsError, TetherSettings

FORMATS = (".yaml", ".yml", ".toml", ".json")


def read_config(path: str | Path) -> dict[str, Any]:
    """The file's settings, keys in snake case; ``SettingsError`` (naming the file) when it cannot be read, does
    not parse, is not a mapping or has a key twice (``max_num_seqs`` and ``max-num-seqs``)."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise SettingsError(
            "", str(path), f"a config file is {', '.join(FORMATS)}, not {path.suffix or 'none'!r}"
        )
    try:
        text = path.read_text()
    except OSError as exc:
        raise SettingsError("", str(path), f"cannot read the config file: {exc.strerror or exc}") from None
    try:
        doc = _parse(text, path.suffix.lower())
    except ValueError as exc:  # TOMLDecodeError and JSONDecodeError are; _parse makes YAMLError one
        raise SettingsError("", str(path), f"does not parse: {' '.join(str(exc).split())}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise SettingsError(
            "", str(path), f"a config file is a mapping of settings, not a {type(doc).__name__}"
        )
    values: dict[str, Any] = {}
    for key, value in doc.items():
        name = str(key).replace("-", "_")
        if name in values:
            raise SettingsError(name, str(path), f"{name} is set twice")
        values[name] = value
    return values


def _parse(text: str, suffix: str) -> Any:
    if suffix == ".toml":
        return tomllib.loads(text)
    if suffix == ".json":
        return json.loads(text)
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from None


def split_config(
    values: Mapping[str, Any], groups: Iterable[type[TetherSettings]], path: str
) -> dict[type[TetherSettings], dict[str, Any]]:
    """A config file's ``values`` by the group each setting belongs to; ``SettingsError`` for a key no group
    has (a typo must not pass in silence)."""
    groups = tuple(groups)
    split: dict[type[TetherSettings], dict[str, Any]] = {g: {} for g in groups}
    for name, value in values.items():
        owner = next((g for g in groups if name in g.model_fields), None)
        if owner is None:
            known = [n for g in groups for n in g.model_fields]
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]}?" if close else "docs/settings.md lists them"
            raise SettingsError(name, f"{path}: {name}", f"unknown setting ({hint})")
        split[owner][name] = value
    return split
