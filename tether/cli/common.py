"""Engine flags shared by subcommands."""

from __future__ import annotations

import argparse
import socket
import sys

from tether.cli.settings_args import add_settings_args, settings_of
from tether.runtime.settings import EngineSettings, SettingsError


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """The engine's flags, generated from ``EngineSettings`` (``settings_args.py``), and ``--config FILE``."""
    add_settings_args(p, EngineSettings)


def engine_kwargs(args: argparse.Namespace) -> dict:
    """``EngineConfig``'s keyword arguments but ``model``, from the flags, ``$TETHER_*`` and ``--config``."""
    return settings_of(args, EngineSettings).engine_kwargs()


def listen(host: str, port: int, command: str) -> socket.socket | None:
    """A socket bound to ``host:port``, taken before anything else starts (no engine loaded, no run recorded);
    ``None`` after one line on stderr when the address is taken or not ours (the caller exits 1)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a port in TIME_WAIT is free
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        print(f"tether {command}: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return None
    return sock


class ShowDefaults(argparse.HelpFormatter):
    """``--help`` states each flag's default, unless the flag has none, is a switch, or its help already says."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            not action.option_strings
            or "default" in text
            or any(action.default is nothing for nothing in (None, False, argparse.SUPPRESS))
        ):
            return text
        return f"{text} (default: %(default)s)"


def check_engine_flags(args: argparse.Namespace) -> str | None:
    """What is wrong with the engine's settings (``--policy``, ...) or ``--model``, naming the setting, before
    anything starts (an input error: the caller exits 2); ``None`` when they are valid and the model exists."""
    from tether.runtime.engine.errors import ModelLoadError
    from tether.runtime.engine.models.presets import PRESETS
    from tether.runtime.engine.models.sources import check_model

    try:
        model = settings_of(args, EngineSettings).model
    except SettingsError as exc:
        return str(exc)
    try:
        check_model(model, tuple(PRESETS))
    except ModelLoadError as exc:
        return f"--model: {exc}"
    return None
