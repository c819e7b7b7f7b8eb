"""SmolLM2-135M-Instruct (from its wheel's GGUF file) against transformers loading the same file: greedy
tokens equal at batch 1 and batched, the cached-prefix path equals a cold run, chat answers stop at the
template's end of turn."""

from __future__ import annotations

import json

import pytest
import torch

from tests.smollm2 import CHAT_PROMPTS, conversation
from tether.runtime import SamplingParams

pytestmark = pytest.mark.slow  # SmolLM2 end to end, against transformers loading the same file

NEW_TOKENS = 32
GREEDY_32 = SamplingParams(temperature=0.0, max_tokens=NEW_TOKENS, ignore_eos=True)


def hf_greedy(model, prompt_ids: tuple[int, ...], n: int = NEW_TOKENS) -> list[int]:
    ids = torch.tensor([list(prompt_ids)])
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=n,
        do_sample=False,
        eos_token_id=None,
        pad_token_id=0,
    )
    return out[0, ids.shape[1] :].tolist()


def test_greedy_tokens_equal_transformers_at_batch_1_and_batched(smollm2, smollm2_transformers):
    conversations = [conversation(p) for p in CHAT_PROMPTS]
    batched = smollm2.chat(conversations, GREEDY_32)
    alone = [smollm2.chat(c, GREEDY_32)[0] for c in conversations]
    for b, a in zip(batched, alone):
        expected = hf_greedy(smollm2_transformers, b.prompt_token_ids)
        assert list(b.outputs[0].token_ids) == expected, b.prompt
        assert list(a.outputs[0].token_ids) == expected, a.prompt
    smollm2.engine.check_integrity()


def test_second_turn_on_cached_kv_equals_a_cold_run(smollm2):
    engine = smollm2.engine
    first = [{"role": "user", "content": "Name a planet in our solar system."}]
    answer = smollm2.chat(first, SamplingParams(temperature=0.0, max_tokens=24))[0].outputs[0].text
    second = first + [
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "How far is it from the Sun?"},
    ]
    warm = smollm2.chat(second, GREEDY_32)[0]
    assert warm.num_cached_tokens >= 32  # the first turn's prompt blocks were reused
    engine.kv_manager.reset_prefix_cache()
    cold = smollm2.chat(second, GREEDY_32)[0]
    assert cold.num_cached_tokens == 0
    assert warm.outputs[0].token_ids == cold.outputs[0].token_ids
    engine.check_integrity()


def test_chat_answer_stops_at_end_of_turn(smollm2):
    im_end = smollm2.tokenizer.encode("<|im_end|>")[-1]
    assert im_end in smollm2.tokenizer.eos_token_ids
    out = smollm2.chat(
        conversation("What is the capital of France?"), SamplingParams(temperature=0.0, max_tokens=64)
    )
    completion = out[0].outputs[0]
    assert completion.finish_reason == "stop"
    assert completion.token_ids[-1] == im_end
    assert "Paris" in completion.text and "<|im_end|>" not in completion.text
    smollm2.engine.check_integrity()


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city", "unit"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two integers.",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
        },
    },
]


def _schema(name: str) -> dict:
    return next(t["function"]["parameters"] for t in TOOLS if t["function"]["name"] == name)


def test_forced_tool_calls_have_arguments_valid_against_the_schema(smollm2):
    import jsonschema

    from tether.runtime.engine.chat import parse_tool_calls

    questions = ["What's the weather in Oslo?", "What is 17 plus 25?", "Tell me about Rome."]
    choices = ["required", {"type": "function", "function": {"name": "add"}}]
    params = SamplingParams(temperature=0.0, max_tokens=64)
    for choice in choices:
        outs = smollm2.chat([conversation(q) for q in questions], params, tools=TOOLS, tool_choice=choice)
        for out in outs:
            completion = out.outputs[0]
            assert completion.finish_reason == "stop", completion.text
            [call] = parse_tool_calls(completion.text, TOOLS).tool_calls
            if choice != "required":
                assert call.name == "add"
            jsonschema.validate(json.loads(call.arguments), _schema(call.name))
    smollm2.engine.check_integrity()


def test_json_schema_outputs_validate_in_a_mixed_batch(smollm2):
    import jsonschema

    from tether.runtime.engine.structured import StructuredOutputs

    person = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 40}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    colors = {  # bounded: a small model repeats list items until max_tokens otherwise
        "type": "object",
        "properties": {"colors": {"type": "array", "items": {"enum": ["red", "green"]}, "maxItems": 3}},
        "required": ["colors"],
    }
    constrained = [
        ("Describe a fictional person as JSON.", person),
        ("Give me a JSON object listing colors.", colors),
        ("Describe your best friend as JSON.", person),
    ]
    free = ["What is the capital of France?", "Name a fruit."]
    convs = [conversation(q) for q, _ in constrained] + [conversation(q) for q in free]
    params = [
        SamplingParams(temperature=0.0, max_tokens=96, structured_outputs=StructuredOutputs(json=schema))
        for _, schema in constrained
    ] + [SamplingParams(temperature=0.0, max_tokens=24)] * len(free)
    outs = smollm2.generate(
        [smollm2.tokenizer.apply_chat_template(c, add_generation_prompt=True) for c in convs], params
    )
    for out, (_, schema) in zip(outs, constrained):
        assert out.outputs[0].finish_reason == "stop", out.outputs[0].text
        jsonschema.validate(json.loads(out.outputs[0].text), schema)
    alone = smollm2.chat(convs[-1], SamplingParams(temperature=0.0, max_tokens=24))[0]
    assert outs[-1].outputs[0].token_ids == alone.outputs[0].token_ids  # free rows are not masked
    smollm2.engine.check_integrity()


def test_a_tool_turn_extends_the_cached_prefix(smollm2):
    """turn 1 calls a tool; turn 2 = turn 1 + the parsed call + the tool's result reuses turn 1's KV."""
    from tether.runtime.engine.chat import parse_tool_calls

    messages = conversation("What's the weather in Paris?")
    first = smollm2.chat(
        messages, SamplingParams(temperature=0.0, max_tokens=64), tools=TOOLS, tool_choice="required"
    )
    parsed = parse_tool_calls(first[0].outputs[0].text, TOOLS)
    call = parsed.tool_calls[0]
    messages = messages + [
        parsed.to_message(),
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 21, "sky": "clear"})},
    ]
    prompt_1 = smollm2.tokenizer.apply_chat_template(
        conversation("What's the weather in Paris?"), tools=TOOLS
    )
    prompt_2 = smollm2.tokenizer.apply_chat_template(messages, tools=TOOLS)
    assert prompt_2.startswith(prompt_1 + first[0].outputs[0].text)  # one growing prefix
    second = smollm2.chat(messages, SamplingParams(temperature=0.0, max_tokens=48), tools=TOOLS)[0]
    block = smollm2.engine.config.block_size
    assert second.num_cached_tokens >= len(first[0].prompt_token_ids) // block * block
    assert second.outputs[0].finish_reason == "stop" and second.outputs[0].text
    smollm2.engine.check_integrity()


async def test_async_engine_serves_smollm2():
    from tether.runtime.engine.async_engine import AsyncEngine, GenerateRequest
    from tether.runtime.engine.config import EngineConfig

    engine = await AsyncEngine.create(EngineConfig(model="smollm2", num_kv_blocks=64))
    try:
        prompt = engine.engine.tokenizer.apply_chat_template(conversation("What is the capital of France?"))
        out = await engine.generate(GenerateRequest(prompt, SamplingParams(temperature=0.0, max_tokens=32)))
        assert "Paris" in out.outputs[0].text and out.outputs[0].finish_reason == "stop"
        await engine.check_integrity()
    finally:
        await engine.close()
