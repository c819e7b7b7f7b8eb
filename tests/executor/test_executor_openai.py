"""``OpenAIBackend`` against a small OpenAI-compatible server on loopback (``http.server`` in a thread) that
echoes: what the backend sends (session affinity fields and header, messages, schema, tools) and how it reads
the replies. A unit test of this one layer: the server is not a model."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.executor.conftest import REGISTRY, compile_yaml
from tether.dag.compiler import LLMHints
from tether.runtime.executor import Executor, LLMBackendError, LLMRequest
from tether.runtime.executor.backends.openai import OpenAIBackend
from tether.tools import LocalToolRunner


class EchoServer:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        self.tool_call = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                # HTTP header names are case-insensitive
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.seen.append({"path": self.path, "headers": headers, "body": body})
                if server.fail_with is not None:
                    self._send(server.fail_with, {"error": {"message": "model overloaded"}})
                    return
                self._send(200, server.reply(self.path, body))

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def reply(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        usage = {"prompt_tokens": 11, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 8}}
        if path.endswith("/completions") and "prompt" in body:
            return {
                "choices": [{"text": f"echo: {body['prompt']}", "finish_reason": "length"}],
                "usage": usage,
            }
        if self.tool_call:
            call = {
                "type": "function",
                "function": {"name": "nap", "arguments": '{"label": "x", "seconds": 0}'},
            }
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
        elif "response_format" in body:
            message = {"role": "assistant", "content": json.dumps({"echo": body["messages"][-1]["content"]})}
        else:
            message = {"role": "assistant", "content": f"echo: {body['messages'][-1]['content']}"}
        return {"choices": [{"message": message, "finish_reason": "stop"}], "usage": usage}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[EchoServer]:
    s = EchoServer()
    yield s
    s.close()


async def test_chat_requests_carry_the_session_for_router_affinity(server: EchoServer) -> None:
    backend = OpenAIBackend(server.url, "llama-8b", api_key="k3y")
    request = LLMRequest(
        program_id="prog-7",
        node_id="plan",
        messages=({"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}),
        max_tokens=5,
        temperature=0.3,
        hints=LLMHints(turn=2),
    )
    result = await backend.complete(request)
    await backend.close()
    assert (result.text, result.prompt_tokens, result.completion_tokens, result.cached_tokens) == (
        "echo: hi",
        11,
        3,
        8,
    )
    assert result.finish_reason == "stop"
    (seen,) = server.seen
    assert seen["path"] == "/v1/chat/completions"
    assert seen["headers"]["x-session-id"] == "prog-7"
    assert seen["headers"]["x-request-id"] == "prog-7/plan#1"
    assert seen["headers"]["authorization"] == "Bearer k3y"
    assert seen["body"] == {
        "model": "llama-8b",
        "max_tokens": 5,
        "temperature": 0.3,
        "session_id": "prog-7",
        "prompt_cache_key": "prog-7",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
    }


async def test_a_workflow_through_the_openai_backend(server: EchoServer) -> None:
    compiled = compile_yaml(
        """\
        nodes:
          - {id: fact, tool: nap, args: {label: sky is blue, seconds: 0}}
          - id: typed
            llm:
              messages: [{role: user, content: "${fact.output}"}]
              tools: [nap]
              output: {type: object, properties: {echo: {type: string}}, required: [echo]}
          - {id: raw, llm: {prompt: "P ${typed.output.echo}", max_tokens: 9}}
        outputs: {echo: "${typed.output.echo}", raw: "${raw.output}"}
        """
    )
    backend = OpenAIBackend(server.url, "m", session_header="X-Affinity")
    result = await Executor(LocalToolRunner(REGISTRY), backend).run(compiled, program_id="wf-1")
    await backend.close()
    assert result.outputs == {"echo": "sky is blue", "raw": "echo: P sky is blue"}
    chat, completion = server.seen
    assert chat["body"]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "typed", "schema": compiled.program.nodes["typed"].output},
    }
    (offered,) = chat["body"]["tools"]
    assert offered["function"]["name"] == "nap"
    assert offered["function"]["parameters"] == REGISTRY.get("nap").input_schema()
    assert completion["path"] == "/v1/completions" and completion["body"]["prompt"] == "P sky is blue"
    assert completion["body"]["max_tokens"] == 9
    assert {s["headers"]["x-affinity"] for s in server.seen} == {"wf-1"}
    assert {s["body"]["session_id"] for s in server.seen} == {"wf-1"}


async def test_tool_call_replies(server: EchoServer) -> None:
    server.tool_call = True
    compiled = compile_yaml(
        "nodes:\n  - {id: ask, llm: {messages: [{role: user, content: go}], tools: [nap]}}\n"
    )
    backend = OpenAIBackend(server.url, "m")
    result = await Executor(LocalToolRunner(REGISTRY), backend).run(compiled)
    await backend.close()
    assert result.node_outputs["ask"] == [{"tool": "nap", "args": {"label": "x", "seconds": 0}}]


async def test_http_errors_name_the_node(server: EchoServer) -> None:
    server.fail_with = 503
    backend = OpenAIBackend(server.url, "m", max_retries=0)
    with pytest.raises(
        LLMBackendError,
        match=r"node 'n': LLM call failed: HTTP 503 from .*/v1/chat/completions: .*overloaded",
    ):
        await backend.complete(LLMRequest("p", "n", messages=({"role": "user", "content": "x"},)))
    await backend.close()
    dead = OpenAIBackend("http://127.0.0.1:9/v1", "m", max_retries=0)  # nothing listens on the discard port
    with pytest.raises(LLMBackendError, match="node 'n': LLM call failed: ConnectError"):
        await dead.complete(LLMRequest("p", "n", prompt="x"))
    await dead.close()
