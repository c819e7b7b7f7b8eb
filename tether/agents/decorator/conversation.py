"""``Conversation``: one message history across an agent's LLM calls, so the engine sees one growing prefix.

conv = conversation(system="You are terse.", tools=[search_docs])
first = conv.say("Which doc covers KV caches?")   # user turn + LLM call; the reply joins the history
calls = await conv.call_tools()                   # the model's tool calls as nodes + `tool` messages
second = conv.llm()                               # the next turn reads the results
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tether.agents.decorator.context import AgentContext, require_context
from tether.agents.decorator.handles import NodeHandle, Reference
from tether.dag.ir import FunctionCall, Message, MessageToolCall
from tether.tools.tool import Tool


class Conversation:
    """Messages as ``dag.Message``s: each LLM call gets every message so far; its reply is then appended as
    an assistant message referencing the call's node (``${llm_3.output}``); tool results become ``tool``
    messages referencing the tool nodes. ``llm_kwargs`` are defaults of every call (``llm()``'s keywords)."""

    def __init__(
        self,
        ctx: AgentContext,
        *,
        system: str | None = None,
        tools: Sequence[Tool | str] = (),
        **llm_kwargs: Any,
    ) -> None:
        self._ctx = ctx
        self.messages: list[Message] = []
        self.tools = tuple(tools)
        self.llm_kwargs = llm_kwargs
        self.last: NodeHandle | None = None
        if system is not None:
            self.add("system", system)

    def add(self, role: str, content: str | Reference) -> None:
        self.messages.append(Message(role=role, content=self._ctx.text(content)))  # type: ignore[arg-type]

    def say(self, text: str | Reference, **kwargs: Any) -> NodeHandle:
        """A user turn and the model's reply to it (a handle, running)."""
        self.add("user", text)
        return self.llm(**kwargs)

    def llm(self, **kwargs: Any) -> NodeHandle:
        """The model's next turn on the history as it is (after tool results, say)."""
        options = {"tools": self.tools or None, **self.llm_kwargs, **kwargs}
        handle = self._ctx.llm(list(self.messages), **options)
        self.messages.append(Message(role="assistant", content=handle.text))
        self.last = handle
        return handle

    async def call_tools(self, reply: NodeHandle | None = None) -> list[NodeHandle]:
        """If ``reply`` (default: the last turn) was made only of tool calls, start them (tool nodes after the
        reply's node) and put them in the history: the assistant message becomes its ``tool_calls``, each
        result a ``tool`` message. Returns their handles (none when the reply was text). Needs the reply's value, so an
        agent that uses it cannot be compiled (``ValueDependentError``)."""
        reply = reply or self.last
        if reply is None:
            return []
        if self._ctx.compiling:
            raise self._ctx.misuse(reply, "call_tools() (which tools run depends on the reply)")
        value = await reply
        if not (
            isinstance(value, list) and value and all(isinstance(c, dict) and "tool" in c for c in value)
        ):
            return []
        ids = [f"call_{reply.node_id}_{i}" for i in range(len(value))]
        at = next(i for i, m in enumerate(self.messages) if m.role == "assistant" and m.content == reply.text)
        self.messages[at] = Message(
            role="assistant",
            tool_calls=tuple(
                MessageToolCall(id=i, function=FunctionCall(name=c["tool"], arguments=json.dumps(c["args"])))
                for i, c in zip(ids, value, strict=True)
            ),
        )
        handles = []
        for call_id, c in zip(ids, value, strict=True):
            handle = self._ctx.tool_call(self._ctx.tool(c["tool"]), (), c["args"], depends=(reply.node_id,))
            self.messages.insert(
                at + 1 + len(handles), Message(role="tool", content=handle.text, tool_call_id=call_id)
            )
            handles.append(handle)
        return handles


def conversation(
    *, system: str | None = None, tools: Sequence[Tool | str] = (), **llm_kwargs: Any
) -> Conversation:
    """A new message history in the current agent (``AgentContextError`` outside one)."""
    return Conversation(require_context("conversation()"), system=system, tools=tools, **llm_kwargs)
