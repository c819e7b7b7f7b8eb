"""Chat format and tool calls, shared by ``LLM.chat``, the server and the agents (torch-free at import).

- ``tools``: ``Tool``, ``normalize_tools`` (OpenAI tool dicts -> ``Tool``), ``tool_choice_constraint`` (a forced
  ``tool_choice`` -> ``StructuredOutputs(grammar=...)``).
- ``render``: ``lower_messages`` (the Hermes-style conversation for templates without tool support,
  ``TOOLS_SYSTEM_BLOCK``), ``native_messages`` (for templates with it), template probes.
- ``parse``: ``parse_tool_calls(text) -> ParsedChat(content, tool_calls)``, ``ToolCallParseError``.

See "Chat format and tool calls" in docs/engine.md.
"""

from tether.runtime.engine.chat.parse import (
    ParsedChat,
    ToolCall,
    ToolCallParseError,
    new_tool_call_id,
    parse_tool_calls,
)
from tether.runtime.engine.chat.render import (
    TOOL_RESULTS_ROLE,
    TOOLS_SYSTEM_BLOCK,
    format_tool_call,
    format_tool_response,
    lower_messages,
    native_messages,
    probe_default_system_prompt,
    probe_end_of_turn,
    template_supports_tools,
    tools_system_block,
)
from tether.runtime.engine.chat.tools import (
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    Tool,
    call_object_schema,
    normalize_tools,
    resolve_tool_choice,
    tool_choice_constraint,
)

__all__ = [
    "TOOLS_SYSTEM_BLOCK",
    "TOOL_CALL_CLOSE",
    "TOOL_CALL_OPEN",
    "TOOL_RESULTS_ROLE",
    "ParsedChat",
    "Tool",
    "ToolCall",
    "ToolCallParseError",
    "call_object_schema",
    "format_tool_call",
    "format_tool_response",
    "lower_messages",
    "native_messages",
    "new_tool_call_id",
    "normalize_tools",
    "parse_tool_calls",
    "probe_default_system_prompt",
    "probe_end_of_turn",
    "resolve_tool_choice",
    "template_supports_tools",
    "tool_choice_constraint",
    "tools_system_block",
]
