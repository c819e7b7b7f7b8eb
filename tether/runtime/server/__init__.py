"""The OpenAI-compatible server: ``create_app(AsyncEngine, ServerConfig)`` (FastAPI), run by ``tether serve``.
See docs/server.md."""

from tether.runtime.server.app import create_app
from tether.runtime.server.serving import ServerConfig

__all__ = ["ServerConfig", "create_app"]
