"""The OpenAI-compatible server: ``create_app(AsyncEngine, ServerConfig, TurnOutcomes)`` (FastAPI), run by
``tether serve``. See docs/server.md."""

from tether.runtime.server.app import create_app
from tether.runtime.server.outcome import TurnOutcomes
from tether.runtime.server.serving import ServerConfig

__all__ = ["ServerConfig", "TurnOutcomes", "create_app"]
