"""The request-router classes Ray Serve deploys, by router name; their logic is in ``routing.py``.

Ray pickles a request router's own module by value (``RequestRouterConfig._serialize_request_router_cls``), so
this module holds only the leaf classes: their bases, and the registry the ingress reads, stay in ``routing.py``
(pickled by reference), one copy per process.
"""

from __future__ import annotations

from ray.serve.request_router import RequestRouter

from tether.runtime.cluster.serve import routing


class ProgramRequestRouter(routing.ProgramRouting):
    """Tether's program-affinity router."""


class Pow2RequestRouter(routing.Pow2Routing):
    """Ray Serve's ``PowerOfTwoChoicesRequestRouter``."""


class PrefixRequestRouter(routing.PrefixRouting):
    """Ray Serve LLM's ``PrefixCacheAffinityRouter``."""


class SessionRequestRouter(routing.SessionRouting):
    """A consistent-hash ring on the program id (production-stack's session router)."""


REQUEST_ROUTERS: dict[str, type[RequestRouter]] = {
    "program": ProgramRequestRouter,
    "pow2": Pow2RequestRouter,
    "prefix": PrefixRequestRouter,
    "session": SessionRequestRouter,
}
