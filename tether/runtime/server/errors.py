"""OpenAI-style errors: ``{"error": {"message", "type", "param", "code"}}`` with the HTTP status the OpenAI SDK
maps to its exception classes (400 ``BadRequestError``, 401 ``AuthenticationError``, 404 ``NotFoundError``, 503
``InternalServerError`` retried after ``Retry-After``)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


class APIError(Exception):
    """One failed request. ``param`` names the body field at fault (``messages[2].content``), ``code`` a stable
    machine-readable reason (``context_length_exceeded``, ``model_not_found``, ...). A plain exception, not a
    frozen dataclass: frameworks set ``__traceback__`` on the exceptions they handle."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status, self.message, self.type = status, message, type
        self.param, self.code, self.headers = param, code, dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, "invalid_request_error", param, code)
