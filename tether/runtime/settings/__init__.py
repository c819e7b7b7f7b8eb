"""Tether's settings: each engine and server setting declared once (name, type, default, help, validation), read
from command-line flags, ``$TETHER_*`` variables and a config file, in that order of precedence (``base.py``).
The CLI generates its flags from these models (``tether/cli/settings_args.py``); ``EngineSettings.engine_config()``
and ``ServerSettings.server_config()`` build the frozen configs the engine and the server take. Importing this
package imports no torch (``.importlinter``). See docs/settings.md."""

from __future__ import annotations

from tether.runtime.settings.base import ENV_PREFIX, SettingsError, TetherSettings
from tether.runtime.settings.engine import EngineSettings
from tether.runtime.settings.file import read_config
from tether.runtime.settings.server import ServerSettings

GROUPS: tuple[type[TetherSettings], ...] = (EngineSettings, ServerSettings)

__all__ = [
    "ENV_PREFIX",
    "GROUPS",
    "EngineSettings",
    "ServerSettings",
    "SettingsError",
    "TetherSettings",
    "read_config",
]
