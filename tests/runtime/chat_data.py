"""Tools, messages and their exact renderings shared by the chat-format tests."""

from __future__ import annotations

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}
TIME = {  # the bare function dict is accepted too
    "name": "get_time",
    "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
}
TOOLS = [WEATHER, TIME]

BLOCK = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    '{"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city", '
    '"parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", '
    '"enum": ["c", "f"]}}, "required": ["city"]}}}\n'
    '{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": '
    '{"tz": {"type": "string"}}, "required": ["tz"]}}}\n'
    "</tools>\n\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)
SMOL_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
USER = {"role": "user", "content": "Weather in Zürich, and the time there?"}
CALL_1 = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city":"Zürich","unit":"c"}'},  # compact: re-rendered
}
CALL_2 = {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": {"tz": "CET"}}}
CALLS_TURN = {"role": "assistant", "content": None, "tool_calls": [CALL_1, CALL_2]}
RESULTS = [
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 18}'},
    {"role": "tool", "tool_call_id": "call_2", "content": "14:05"},
]
CALLS_TEXT = (
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Zürich", "unit": "c"}}\n</tool_call>\n'
    '<tool_call>\n{"name": "get_time", "arguments": {"tz": "CET"}}\n</tool_call>'
)
RESULTS_TEXT = '<tool_response>\n{"temp": 18}\n</tool_response>\n<tool_response>\n14:05\n</tool_response>'


def chatml(*turns: tuple[str, str], prompt: bool = True) -> str:
    return "".join(f"<|im_start|>{r}\n{c}<|im_end|>\n" for r, c in turns) + (
        "<|im_start|>assistant\n" * prompt
    )
