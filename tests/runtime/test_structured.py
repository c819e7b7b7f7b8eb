"""Structured generation end to end on CPU with random weights (the tiny preset and its HF-checkpoint twin).

The grammars are finite (enums, bounded strings, arrays and integers), so whatever a random model prefers,
every output ends with a stop token well before ``max_tokens``: ``finish_reason == "stop"`` is exact, and each
output is checked by an independent validator (jsonschema, ``re.fullmatch``, membership)."""

from __future__ import annotations

import json
import random
import re

import jsonschema
import pytest

from tether.runtime import LLM, SamplingParams
from tether.runtime.engine.errors import InvalidRequestError
from tether.runtime.engine.structured import StructuredOutputs

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 6},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3},
    },
    "required": ["name", "age", "tags"],
}
ORDER = {
    "type": "object",
    "properties": {
        "size": {"enum": ["S", "M", "L"]},
        "qty": {"type": "integer", "minimum": 1, "maximum": 9},
        "gift": {"type": "boolean"},
        "note": {"anyOf": [{"type": "null"}, {"enum": ["fast", "cheap"]}]},
    },
    "required": ["size", "qty", "gift", "note"],
}
PHONE = r"\d{3}-\d{4}"
SUM_GRAMMAR = 'root ::= "(" num ("+" num){0,3} ")"\nnum ::= [1-9] [0-9]?'
SUM_RE = r"\([1-9][0-9]?(\+[1-9][0-9]?){0,3}\)"
CHOICES = ["yes", "no", 'say "hi"', "back\\slash", "naïve ☕"]

rng = random.Random(0)
PROMPTS = [[rng.randrange(256) for _ in range(rng.randrange(4, 24))] for _ in range(6)]


def greedy(spec: StructuredOutputs | None = None, max_tokens: int = 96, **kw) -> SamplingParams:
    return SamplingParams(temperature=0.0, max_tokens=max_tokens, structured_outputs=spec, **kw)


def texts(outs) -> list[str]:
    return [o.outputs[0].text for o in outs]


def token_ids(outs) -> list[tuple[int, ...]]:
    return [o.outputs[0].token_ids for o in outs]


def assert_clean(llm: LLM) -> None:
    llm.engine.check_integrity()
    assert llm.engine.structured.num_requests == 0
    assert llm.engine.kv_manager.num_used_blocks == 0 and not llm.engine.has_unfinished()


def assert_stopped(outs) -> None:
    assert [o.outputs[0].finish_reason for o in outs] == ["stop"] * len(outs)
    assert all(o.outputs[0].token_ids[-1] in (257, 260) for o in outs)  # ended by the grammar's EOS


@pytest.fixture(scope="module")
def llm() -> LLM:
    return LLM("tiny", num_kv_blocks=128)


@pytest.mark.parametrize("schema", [PERSON, ORDER], ids=["person", "order"])
def test_json_schema_outputs_validate_and_are_compact(llm, schema):
    outs = llm.generate(PROMPTS, greedy(StructuredOutputs(json=schema)))
    assert_stopped(outs)
    for text in texts(outs):
        value = json.loads(text)  # strict: no raw control characters in strings
        jsonschema.validate(value, schema)
        assert text == json.dumps(value, ensure_ascii=False)  # json.dumps' separators, schema order
    assert_clean(llm)


def test_schema_given_as_json_text_equals_the_dict(llm):
    as_dict = llm.generate(PROMPTS[:2], greedy(StructuredOutputs(json=ORDER)))
    as_text = llm.generate(PROMPTS[:2], greedy(StructuredOutputs(json=json.dumps(ORDER))))
    assert token_ids(as_text) == token_ids(as_dict)
    assert_clean(llm)


def test_regex_grammar_and_choice_outputs_match(llm):
    phone = llm.generate(PROMPTS, greedy(StructuredOutputs(regex=PHONE)))
    sums = llm.generate(PROMPTS, greedy(StructuredOutputs(grammar=SUM_GRAMMAR)))
    picks = llm.generate(PROMPTS, greedy(StructuredOutputs(choice=CHOICES)))
    for outs in (phone, sums, picks):
        assert_stopped(outs)
    assert all(re.fullmatch(PHONE, t) for t in texts(phone))
    assert all(re.fullmatch(SUM_RE, t) for t in texts(sums))
    assert all(t in CHOICES for t in texts(picks))
    assert_clean(llm)


def test_json_object_outputs_parse_as_objects(llm):
    outs = llm.generate(PROMPTS, greedy(StructuredOutputs(json_object=True), max_tokens=48))
    stopped = [o for o in outs if o.outputs[0].finish_reason == "stop"]
    assert stopped, "no output finished: the grammar never allowed EOS"
    assert all(isinstance(json.loads(o.outputs[0].text), dict) for o in stopped)
    for o in outs:  # an output cut by max_tokens is still a prefix the grammar accepts
        assert o.outputs[0].text.startswith("{") and o.outputs[0].finish_reason in ("stop", "length")
    assert_clean(llm)


def test_masks_leave_unconstrained_rows_untouched(llm):
    free = SamplingParams(temperature=0.0, max_tokens=16, ignore_eos=True)
    alone_free = token_ids(llm.generate(PROMPTS[:3], free))
    alone_json = token_ids(llm.generate(PROMPTS[3:], greedy(StructuredOutputs(json=PERSON))))
    mixed = llm.generate(PROMPTS, [free, free, free] + [greedy(StructuredOutputs(json=PERSON))] * 3)
    assert token_ids(mixed) == alone_free + alone_json
    assert_clean(llm)


def test_seeded_sampling_with_a_mask_is_reproducible_and_valid(llm):
    def params(seed: int) -> SamplingParams:
        spec = StructuredOutputs(json=PERSON)
        return SamplingParams(temperature=1.0, top_p=0.95, seed=seed, max_tokens=96, structured_outputs=spec)

    first = llm.generate(PROMPTS[:4], [params(s) for s in range(4)])
    batched_with_others = llm.generate(
        PROMPTS[:4] + PROMPTS[4:],
        [params(s) for s in range(4)] + [greedy(StructuredOutputs(regex=PHONE))] * 2,
    )
    assert token_ids(batched_with_others[:4]) == token_ids(first)
    assert_stopped(first)
    for text in texts(first):
        jsonschema.validate(json.loads(text), PERSON)
    assert len(set(texts(first))) > 1  # the seeds really sample (random weights: flat distributions)
    assert_clean(llm)


def test_preemption_and_prefix_cache_hits_give_the_cold_output():
    specs = [StructuredOutputs(json=PERSON), StructuredOutputs(json=ORDER), StructuredOutputs(regex=PHONE)]
    params = [greedy(specs[i % 3]) for i in range(len(PROMPTS))]
    roomy = LLM("tiny", num_kv_blocks=256)
    cold = [token_ids(roomy.generate([p], q))[0] for p, q in zip(PROMPTS, params)]
    assert_clean(roomy)
    tight = LLM("tiny", num_kv_blocks=10)  # 160 tokens for 6 requests of up to ~80
    got = tight.generate(PROMPTS, params)
    assert tight.engine.scheduler.num_preemptions > 0
    assert token_ids(got) == cold
    assert_clean(tight)
    prefix = [rng.randrange(256) for _ in range(40)]
    first = roomy.generate([prefix + [1]], params[0])[0]
    again = roomy.generate([prefix + [2]], params[0])[0]
    assert again.num_cached_tokens >= 32
    alone = LLM("tiny", num_kv_blocks=64, enable_prefix_caching=False).generate([prefix + [2]], params[0])[0]
    assert (
        again.outputs[0].token_ids == alone.outputs[0].token_ids and first.outputs[0].finish_reason == "stop"
    )
    assert_clean(roomy)


def test_hf_checkpoint_uses_the_hf_tokenizer_and_matches_the_byte_tokenizer(llm, tiny_checkpoint):
    hf_llm = LLM(str(tiny_checkpoint), num_kv_blocks=128)
    assert hasattr(hf_llm.engine.tokenizer, "hf")
    for spec in (StructuredOutputs(json=PERSON), StructuredOutputs(regex=PHONE)):
        via_hf = hf_llm.generate(PROMPTS[:3], greedy(spec))
        assert_stopped(via_hf)
        assert token_ids(via_hf) == token_ids(llm.generate(PROMPTS[:3], greedy(spec)))
    for text in texts(via_hf):
        assert re.fullmatch(PHONE, text)
    assert_clean(hf_llm)


def test_identical_specs_hit_the_compiled_grammar_cache(llm):
    llm.generate(PROMPTS[:1], greedy(StructuredOutputs(regex=r"[ab]{2}c")))
    before = llm.engine.structured.cache_stats
    llm.generate(PROMPTS[1:2], greedy(StructuredOutputs(regex=r"[ab]{2}c")))
    after = llm.engine.structured.cache_stats
    assert (after.hits - before.hits, after.misses - before.misses) == (1, 0)
    assert_clean(llm)


@pytest.mark.parametrize(
    "spec, field",
    [
        (dict(json={"type": "object", "properties": {"a": {"type": "nope"}}}), "structured_outputs.json"),
        (dict(json="this is not JSON"), "structured_outputs.json"),
        (dict(regex="[z-a]"), "structured_outputs.regex"),
        (dict(grammar='root ::= "a" missing'), "structured_outputs.grammar"),
        (dict(choice=[]), "structured_outputs.choice"),
        (dict(regex="a", choice=["a"]), "structured_outputs"),
    ],
)
def test_invalid_specs_are_rejected_and_the_engine_keeps_serving(llm, spec, field):
    with pytest.raises(InvalidRequestError) as err:
        llm.engine.add_request(PROMPTS[0], greedy(StructuredOutputs(**spec)), request_id="bad")
    assert err.value.field == field
    assert llm.engine.num_unfinished == 0 and "bad" not in llm.engine.structured
    assert texts(llm.generate(PROMPTS[:1], greedy(StructuredOutputs(choice=["ok"])))) == ["ok"]
    assert_clean(llm)


@pytest.mark.parametrize(
    "extra, field", [(dict(ignore_eos=True), "ignore_eos"), (dict(min_tokens=1), "min_tokens")]
)
def test_params_that_stop_the_grammar_from_ending_are_rejected(llm, extra, field):
    valid = greedy(StructuredOutputs(regex="a"))
    with pytest.raises(InvalidRequestError) as err:  # the valid first request is withdrawn with the batch
        llm.generate(PROMPTS[:2], [valid, greedy(StructuredOutputs(regex="a"), **extra)])
    assert err.value.field == field
    assert_clean(llm)


def test_engine_without_tokenizer_rejects_structured_requests():
    from tether.runtime.costs import H100_LLAMA31_8B
    from tether.runtime.engine.builder import build_engine
    from tether.runtime.engine.config import EngineConfig
    from tether.runtime.sim.backend import SimBackend
    from tether.runtime.sim.clock import VirtualClock

    clock = VirtualClock()
    engine = build_engine(
        EngineConfig(num_kv_blocks=64), backend=SimBackend(H100_LLAMA31_8B, clock), clock=clock.now
    )
    with pytest.raises(InvalidRequestError) as err:
        engine.add_request([1, 2, 3], greedy(StructuredOutputs(regex="a")), request_id="r")
    assert err.value.field == "structured_outputs" and engine.num_unfinished == 0
    engine.add_request([1, 2, 3], SamplingParams(max_tokens=2), request_id="free")
    while engine.has_unfinished():
        engine.step()
    engine.check_integrity()


def test_a_token_the_grammar_rejects_fails_only_its_request(llm):
    engine = llm.engine
    free = SamplingParams(temperature=0.0, max_tokens=8, ignore_eos=True)
    expected = token_ids(llm.generate(PROMPTS[:1], free))[0]
    engine.add_request(PROMPTS[0], free, request_id="free")
    engine.add_request(PROMPTS[1], greedy(StructuredOutputs(regex=PHONE)), request_id="digits")
    real_run = engine.runner.run

    def corrupt(plan, copies=None):  # a sampler bug: a letter where the grammar wants a digit
        sampled = real_run(plan, copies)
        return sampled.replace("digits", ord("x")) if "digits" in sampled else sampled

    engine.runner.run = corrupt
    try:
        done = {}
        while engine.has_unfinished():
            done.update({o.request_id: o for o in engine.step() if o.finished})
    finally:
        engine.runner.run = real_run
    assert done["digits"].outputs[0].finish_reason == "error"
    assert "rejected token 120 at output position 0" in done["digits"].error
    assert done["free"].outputs[0].token_ids == expected
    assert_clean(llm)


def test_abort_drops_the_matcher(llm):
    engine = llm.engine
    engine.add_request(PROMPTS[0], greedy(StructuredOutputs(json=PERSON)), request_id="gone")
    engine.step()
    engine.check_integrity()
    assert "gone" in engine.structured
    engine.abort("gone")
    assert_clean(llm)
