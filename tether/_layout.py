"""Where each subpackage's modules live.

The design's folders (``runtime/``, ``dag/``, ``tools/``, ``kvcache/``, ``kernels/``, ``agents/``) sit at the top
of the repository with no ``__init__.py``: they are PEP 420 namespace portions, so a regular package of the same
name installed anywhere on ``sys.path`` (Hugging Face's ``kernels``, the OpenAI Agents SDK's ``agents``) wins
over them even when the checkout root comes first. Each subpackage's public face is a regular package under
``tether/`` (``tether/kernels/__init__.py``) whose ``__path__`` also names the top-level folder, so
``tether.kernels.paged`` is ``kernels/paged.py``. A built wheel copies the folder's modules into
``tether/kernels/`` itself (setup.py), and then there is nothing to add. docs/architecture.md gives the reason.
"""

from __future__ import annotations

import os

SUBPACKAGES = ("runtime", "dag", "tools", "kvcache", "kernels", "agents")

_TETHER = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_TETHER)


def is_source_checkout() -> bool:
    """True when this ``tether/`` is a checkout's (or worktree's) folder, not an installed copy."""
    return os.path.isfile(os.path.join(_ROOT, "setup.py")) and os.path.isfile(os.path.join(_ROOT, "pyproject.toml"))


def source_folders(package: str) -> list[str]:
    """The checkout folders that hold ``package``'s modules (``tether.kernels`` -> ``[<checkout>/kernels]``); none
    for an installed copy, whose modules sit beside its ``__init__.py``."""
    prefix, _, name = package.partition(".")
    if prefix != "tether" or name not in SUBPACKAGES:
        raise ValueError(f"{package!r} is not one of tether's subpackages {SUBPACKAGES}")
    folder = os.path.join(_ROOT, name)
    if not is_source_checkout() or not os.path.isdir(folder):
        return []
    return [folder]
