"""A scripted OpenAI-compatible server on loopback (``http.server`` in a thread) for the backend tests: each
POST gets the next scripted ``Reply`` (a status with headers and a JSON body, or an SSE stream sent event by
event with pauses), and every request is recorded with its arrival time. Not a model: a unit test of the
HTTP layer."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """``body`` sent as JSON with ``status`` and ``headers``; or, with ``events``, an SSE stream: each event
    (a dict, sent as ``data: JSON``, or a raw string) after ``pause`` seconds, then ``data: [DONE]``
    (``done=False``: the stream just stops). ``delay``: seconds before answering at all."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    events: tuple[dict[str, Any] | str, ...] | None = None
    pause: float = 0.0
    done: bool = True
    delay: float = 0.0


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]  # names lower-cased: HTTP header names are case-insensitive
    body: dict[str, Any]
    at: float  # time.perf_counter() when the request arrived


def chat_chunk(content: str | None = None, reason: str | None = None, **delta: Any) -> dict[str, Any]:
    """One ``chat.completion.chunk`` with ``content`` (and other ``delta`` fields) and a finish reason."""
    if content is not None:
        delta["content"] = content
    choice = {"index": 0, "delta": delta, "finish_reason": reason}
    return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [choice]}


def usage_chunk(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [],
        "usage": usage,
    }


def chat_reply(content: str, reason: str = "stop") -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    return {
        "id": "c",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": reason}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


class ScriptServer:
    """``ScriptServer([Reply, ...])``; ``url`` is the ``/v1`` base; ``seen`` the requests in order. A request
    beyond the script is answered 500. ``GET /models`` lists one model owned by ``owner``."""

    def __init__(self, replies: list[Reply], owner: str = "scripted") -> None:
        self.replies = list(replies)
        self.seen: list[Seen] = []
        self.owner = owner
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                models = {
                    "object": "list",
                    "data": [{"id": "m", "object": "model", "owned_by": server.owner}],
                }
                self._json(Reply(body=models))

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                body = json.loads(raw) if raw else {}
                server.seen.append(Seen(self.path, headers, body, time.perf_counter()))
                reply = (
                    server.replies.pop(0)
                    if server.replies
                    else Reply(500, {"error": {"message": "unscripted"}})
                )
                time.sleep(reply.delay)
                try:
                    self._json(reply) if reply.events is None else self._stream(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout, a closed stream)

            def _json(self, reply: Reply) -> None:
                data = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, reply: Reply) -> None:
                self.send_response(reply.status)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                events = [e if isinstance(e, str) else json.dumps(e) for e in reply.events or ()]
                for event in events + (["[DONE]"] if reply.done else []):
                    time.sleep(reply.pause)
                    self.wfile.write(f"data: {event}\n\n".encode())
                    self.wfile.flush()

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
