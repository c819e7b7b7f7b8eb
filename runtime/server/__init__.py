"""The OpenAI-compatible server: ``create_app(AsyncEngine, ServerConfig)`` (FastAPI), run by ``tether serve``.
See docs/server.md."""

from runtime.server.app import create_app
from runtime.server.serving import ServerConfig

__all__ = ["ServerConfig", "create_app"]
