"""Rendering OpenAI-shaped conversations (tools, assistant ``tool_calls``, ``tool`` results) for a chat template.

Two paths. A template that renders tools itself (its source mentions ``tools``) gets ``native_messages``: the
conversation as transformers' templates expect it, tools passed to the template. Any other template (plain
ChatML, SmolLM2's, the byte tokenizer's) gets ``lower_messages``: a Hermes-style conversation of plain
``{"role", "content"}`` turns that every template renders:

- the tools go into the first system message as ``TOOLS_SYSTEM_BLOCK`` (after its content and a blank line);
  without a system message one is prepended, holding the template's default system prompt (which a template
  such as SmolLM2's writes only when the conversation has no system message) and the block;
- an assistant message's ``tool_calls`` become its content: the content (when any), then one
  ``<tool_call>\\n{"name": ..., "arguments": ...}\\n</tool_call>`` per call, joined by ``\\n``;
- consecutive ``tool`` messages become one ``user`` turn of ``<tool_response>\\n...\\n</tool_response>`` blocks
  joined by ``\\n``, in order (as Qwen2.5 does; ``tool_call_id`` is not rendered: results follow call order).

JSON is written as ``json.dumps`` writes it by default (``", "``, ``": "``) with ``ensure_ascii=False``, which is
what ``tool_choice_constraint`` makes the model emit and what ``parse_tool_calls`` re-serialises to, so a
conversation grows as one prefix: ``render(msgs) + generated + end_of_turn`` is a prefix of
``render(msgs + [parsed assistant message, tool results])``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tether.runtime.engine.chat.tools import TOOL_CALL_CLOSE, TOOL_CALL_OPEN, Tool, dumps_json, loads_json
from tether.runtime.engine.errors import InvalidRequestError

TOOLS_PLACEHOLDER = "{tools}"
TOOLS_SYSTEM_BLOCK = (
    "# Tools\n"
    "\n"
    "You may call one or more functions to assist with the user query.\n"
    "\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n"
    "<tools>\n"
    "{tools}\n"
    "</tools>\n"
    "\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n"
    "<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n'
    "</tool_call>"
)
"""The system-prompt block listing the tools (Hermes / Qwen2.5 wording). ``{tools}`` is replaced by one line
per tool: its ``Tool.to_openai()`` dict as JSON."""

TOOL_RESPONSE_OPEN, TOOL_RESPONSE_CLOSE = "<tool_response>", "</tool_response>"
TOOL_RESULTS_ROLE = "user"
"""The role of the turn holding tool results when the template has no tool support."""

Messages = Sequence[Mapping[str, Any]]


def tools_system_block(tools: Sequence[Tool]) -> str:
    """``TOOLS_SYSTEM_BLOCK`` listing ``tools``."""
    lines = "\n".join(dumps_json(tool.to_openai()) for tool in tools)
    return TOOLS_SYSTEM_BLOCK.replace(TOOLS_PLACEHOLDER, lines)


def format_tool_call(name: str, arguments: Mapping[str, Any]) -> str:
    """One call block: ``<tool_call>\\n{"name": name, "arguments": arguments}\\n</tool_call>``."""
    call = dumps_json({"name": name, "arguments": arguments})
    return f"{TOOL_CALL_OPEN}\n{call}\n{TOOL_CALL_CLOSE}"


def format_tool_response(content: str) -> str:
    """One result block: ``<tool_response>\\ncontent\\n</tool_response>``."""
    return f"{TOOL_RESPONSE_OPEN}\n{content}\n{TOOL_RESPONSE_CLOSE}"


def lower_messages(
    messages: Messages, tools: Sequence[Tool] = (), *, default_system_prompt: str | None = None
) -> list[dict[str, Any]]:
    """The Hermes-style conversation (see the module docstring) for a template without tool support: every
    message has a string ``content`` and no ``tool_calls``. Raises ``InvalidRequestError`` naming the message
    field at fault (``messages[2].tool_calls[0].function.arguments``)."""
    out: list[dict[str, Any]] = []
    previous_role = None
    for i, message in enumerate(_check_messages(messages)):
        role = message["role"]
        content = _content_text(message.get("content"), f"messages[{i}].content")
        if role == "tool":
            block = format_tool_response(_tool_result(content, i))
            if previous_role == "tool":
                out[-1]["content"] += "\n" + block
            else:
                out.append({"role": TOOL_RESULTS_ROLE, "content": block})
        else:
            lowered = {k: v for k, v in message.items() if k != "tool_calls"}
            calls = [format_tool_call(n, a) for n, a, _ in _tool_calls(message, i)]
            lowered["content"] = "\n".join(([content] if content else []) + calls)
            out.append(lowered)
        previous_role = role
    if tools:
        block = tools_system_block(tools)
        if out and out[0]["role"] == "system":
            out[0]["content"] = "\n\n".join(p for p in (out[0]["content"], block) if p)
        else:
            out.insert(
                0, {"role": "system", "content": "\n\n".join(p for p in (default_system_prompt, block) if p)}
            )
    return out


def native_messages(messages: Messages) -> list[dict[str, Any]]:
    """The conversation for a template that renders tool calls itself, as transformers' templates expect it:
    ``tool_calls[j].function.arguments`` an object rather than JSON text, content parts joined into text."""
    out: list[dict[str, Any]] = []
    for i, message in enumerate(_check_messages(messages)):
        converted = dict(message)
        converted["content"] = _content_text(message.get("content"), f"messages[{i}].content")
        if message["role"] == "tool":
            _tool_result(converted["content"], i)
        calls = _tool_calls(message, i)
        if calls:
            converted["tool_calls"] = [
                {
                    **({"id": cid} if cid is not None else {}),
                    "type": "function",
                    "function": {"name": n, "arguments": a},
                }
                for n, a, cid in calls
            ]
        out.append(converted)
    return out


def _check_messages(messages: Messages) -> Messages:
    if isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Sequence):
        raise InvalidRequestError(
            None, "messages", f"expected a list of messages, got {type(messages).__name__}"
        )
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidRequestError(
                None, f"messages[{i}]", f"expected an object, got {type(message).__name__}"
            )
        if not isinstance(message.get("role"), str) or not message["role"]:
            raise InvalidRequestError(None, f"messages[{i}].role", "must be a non-empty string")
    return messages


def _content_text(content: Any, where: str) -> str | None:
    """A message's content as text: a string, ``None``, or OpenAI content parts ``[{"type": "text", "text"}]``
    (joined by ``\\n``)."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, (bytes, Mapping)):
        texts = []
        for j, part in enumerate(content):
            if (
                not isinstance(part, Mapping)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise InvalidRequestError(
                    None, f"{where}[{j}]", "only text parts ({'type': 'text', 'text': ...})"
                )
            texts.append(part["text"])
        return "\n".join(texts)
    raise InvalidRequestError(
        None, where, f"expected a string or a list of text parts, got {type(content).__name__}"
    )


def _tool_result(content: str | None, i: int) -> str:
    if content is None:
        raise InvalidRequestError(None, f"messages[{i}].content", "a tool message needs content (the result)")
    return content


def _tool_calls(message: Mapping[str, Any], i: int) -> list[tuple[str, dict[str, Any], str | None]]:
    """``(name, arguments object, id)`` per call of an assistant message, validated."""
    calls = message.get("tool_calls")
    if calls is None:
        return []
    where = f"messages[{i}].tool_calls"
    if message["role"] != "assistant":
        raise InvalidRequestError(
            None, where, f"only assistant messages carry tool calls, not {message['role']!r}"
        )
    if isinstance(calls, (str, bytes, Mapping)) or not isinstance(calls, Sequence):
        raise InvalidRequestError(None, where, "expected a list of tool calls")
    out = []
    for j, call in enumerate(calls):
        at = f"{where}[{j}]"
        if not isinstance(call, Mapping) or call.get("type", "function") != "function":
            raise InvalidRequestError(None, at, "expected {'type': 'function', 'function': {...}}")
        function = call.get("function")
        if (
            not isinstance(function, Mapping)
            or not isinstance(function.get("name"), str)
            or not function["name"]
        ):
            raise InvalidRequestError(None, f"{at}.function.name", "must be a non-empty string")
        arguments = function.get("arguments")
        try:
            arguments = loads_json(arguments) if isinstance(arguments, str) else arguments
            if isinstance(arguments, Mapping):
                dumps_json(arguments)
        except (TypeError, ValueError) as exc:
            raise InvalidRequestError(None, f"{at}.function.arguments", f"not JSON: {exc}") from None
        if not isinstance(arguments, Mapping):
            raise InvalidRequestError(
                None, f"{at}.function.arguments", "must be a JSON object (as text or a dict)"
            )
        call_id = call.get("id")
        if call_id is not None and not isinstance(call_id, str):
            raise InvalidRequestError(None, f"{at}.id", "must be a string")
        out.append((function["name"], dict(arguments), call_id))
    return out


# --- template probes ---------------------------------------------------------------------------------------

PROBE_SYSTEM, PROBE_USER, PROBE_ASSISTANT = "tetherprobesystem", "tetherprobeuser", "tetherprobeassistant"
_TOOLS_RE = re.compile(r"\btools\b")

Render = Callable[[list[dict[str, Any]]], str]
"""Renders a conversation with the template, without the generation prompt."""


def template_supports_tools(source: str | Mapping[str, str] | None) -> bool:
    """Whether a Jinja chat template renders tools itself: its source (any of them, for a named set) mentions
    ``tools``."""
    if isinstance(source, Mapping):
        return any(template_supports_tools(s) for s in source.values())
    return bool(source) and _TOOLS_RE.search(source) is not None


def probe_default_system_prompt(render: Render) -> str | None:
    """The system prompt the template writes when the conversation has none (SmolLM2's "You are a helpful AI
    assistant named SmolLM, ..."), or ``None``: compares a conversation with a probe system message to one
    without; ``None`` too when the template rejects either."""
    try:
        with_system = render(
            [{"role": "system", "content": PROBE_SYSTEM}, {"role": "user", "content": PROBE_USER}]
        )
        without = render([{"role": "user", "content": PROBE_USER}])
    except Exception:  # a template may raise on system messages (raise_exception) or anything else
        return None
    at = with_system.find(PROBE_SYSTEM)
    if at < 0:
        return None
    head, tail = with_system[:at], with_system[at + len(PROBE_SYSTEM) :]
    if len(without) > len(head) + len(tail) and without.startswith(head) and without.endswith(tail):
        return without[len(head) : len(without) - len(tail)]
    return None


def probe_end_of_turn(render: Render, special_tokens: Iterable[str]) -> str | None:
    """The special token the template writes right after an assistant message's content (``<|im_end|>``,
    ``<|eot_id|>``, ``<end_of_turn>``; spaces and newlines before it skipped), or ``None``."""
    try:
        text = render(
            [{"role": "user", "content": PROBE_USER}, {"role": "assistant", "content": PROBE_ASSISTANT}]
        )
    except Exception:  # a template may raise on anything; then there is nothing to learn from it
        return None
    at = text.rfind(PROBE_ASSISTANT)
    if at < 0:
        return None
    rest = text[at + len(PROBE_ASSISTANT) :].lstrip(" \n")
    matches = [t for t in special_tokens if t and rest.startswith(t)]
    return max(matches, key=len) if matches else None
