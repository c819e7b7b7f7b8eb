"""Structured generation, piece by piece (no model): tokenizer info, compiling and its cache, choice escaping,
the bitmask application against xgrammar's kernel, the manager's matcher bookkeeping, the sampler's guard."""

from __future__ import annotations

import pytest
import torch
import xgrammar as xgr

from tether.runtime.engine.errors import InvalidRequestError
from tether.runtime.engine.models.presets import build_byte_level_hf_tokenizer
from tether.runtime.engine.sampler import Sampler
from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.sequence import Sequence
from tether.runtime.engine.structured import StructuredOutputs
from tether.runtime.engine.structured.bitmask import apply_bitmask
from tether.runtime.engine.structured.compiler import (
    GrammarCompileError,
    GrammarCompilerCache,
    choice_grammar,
)
from tether.runtime.engine.structured.manager import StructuredOutputManager
from tether.runtime.engine.structured.tokenizer_info import UnsupportedTokenizerError, build_tokenizer_info
from tether.runtime.engine.tokenizer import ByteTokenizer, HFTokenizer

EOS = (257, 260)
VOCAB = 384


def allowed(bitmask: torch.Tensor, row: int = 0, vocab: int = VOCAB) -> list[int]:
    bits = bitmask[row].tolist()
    return [t for t in range(vocab) if (bits[t // 32] >> (t % 32)) & 1]


def mask_of(grammar: xgr.CompiledGrammar, text: bytes) -> list[int]:
    """The tokens a fresh matcher allows after ``text`` (one byte per token)."""
    matcher = xgr.GrammarMatcher(grammar)
    for b in text:
        assert matcher.accept_token(b)
    bitmask = xgr.allocate_token_bitmask(1, VOCAB)
    matcher.fill_next_token_bitmask(bitmask)
    return allowed(bitmask)


@pytest.fixture(scope="module")
def byte_cache() -> GrammarCompilerCache:
    return GrammarCompilerCache(build_tokenizer_info(ByteTokenizer(), VOCAB, EOS), capacity=2)


def test_special_tokens_are_never_allowed_and_stop_ids_only_at_the_end(byte_cache):
    grammar = byte_cache.get(StructuredOutputs(regex=r"<\|bos\|>|ab"))
    assert mask_of(grammar, b"") == [ord("<"), ord("a")]  # the text of <|bos|>, never token 256
    assert mask_of(grammar, b"a") == [ord("b")]
    assert mask_of(grammar, b"ab") == list(EOS)


def test_hf_and_byte_tokenizer_infos_give_the_same_masks(byte_cache):
    hf = HFTokenizer(build_byte_level_hf_tokenizer())
    hf_cache = GrammarCompilerCache(build_tokenizer_info(hf, VOCAB, EOS))
    assert build_tokenizer_info(hf, VOCAB, EOS).vocab_type == xgr.VocabType.RAW  # specials blanked
    spec = StructuredOutputs(json={"type": "object", "properties": {"s": {"type": "string", "maxLength": 3}}})
    for prefix in (b"", b'{"s": "', b'{"s": "a<', b'{"s": "abc"'):
        assert mask_of(hf_cache.get(spec), prefix) == mask_of(byte_cache.get(spec), prefix)
    assert 259 not in mask_of(hf_cache.get(spec), b'{"s": "')  # <|im_start|> is not string text


def test_unsupported_tokenizer_and_missing_eos_are_refused():
    with pytest.raises(UnsupportedTokenizerError):
        build_tokenizer_info(object(), VOCAB, EOS)
    with pytest.raises(UnsupportedTokenizerError):
        build_tokenizer_info(ByteTokenizer(), VOCAB, ())


def test_json_strings_exclude_raw_control_characters(byte_cache):
    """xgrammar 0.2.9 lets raw control characters into a maxLength string; the compiler narrows it."""
    grammar = byte_cache.get(StructuredOutputs(json={"type": "string", "maxLength": 4}))
    inside = mask_of(grammar, b'"a')
    assert ord("\t") not in inside and 1 not in inside and ord("\n") not in inside
    assert ord('"') in inside and ord("z") in inside and 0xC3 in inside  # 0xC3: starts a 2-byte character
    assert ord("\\") not in inside  # length-bounded strings take no escapes (xgrammar's rule)


def test_choice_grammar_escapes_every_choice(byte_cache):
    choices = ['a"b', "back\\slash", "new\nline", "tab\t", "ctrl\x01", "é😀", "\U000e0001tag", "[x]|(y)*", ""]
    grammar = byte_cache.compiler.compile_grammar(choice_grammar(choices))
    for choice in choices:
        matcher = xgr.GrammarMatcher(grammar)
        assert matcher.accept_string(choice.encode()) and matcher.is_completed(), choice
    assert not xgr.GrammarMatcher(grammar).accept_string(b"q")  # no choice starts with q
    partial = xgr.GrammarMatcher(grammar)
    assert partial.accept_string(b"a") and not partial.is_completed()
    with pytest.raises(GrammarCompileError):
        choice_grammar([])


@pytest.mark.parametrize(
    "spec, field, reason",
    [
        (StructuredOutputs(json={"type": "foo"}), "structured_outputs.json", 'Unsupported type "foo"'),
        (StructuredOutputs(json="{not json"), "structured_outputs.json", "not valid JSON"),
        (StructuredOutputs(json="[1, 2]"), "structured_outputs.json", "must be an object"),
        (StructuredOutputs(regex="(ab"), "structured_outputs.regex", "parenthesis is not closed"),
        (
            StructuredOutputs(grammar="root ::= foo"),
            "structured_outputs.grammar",
            'Rule "foo" is not defined',
        ),
        (StructuredOutputs(grammar='rule ::= "a"'), "structured_outputs.grammar", 'name "root" is not found'),
    ],
)
def test_bad_specs_name_their_field_and_are_not_cached(byte_cache, spec, field, reason):
    before = byte_cache.stats
    with pytest.raises(GrammarCompileError) as err:
        byte_cache.get(spec)
    assert err.value.field == field and reason in err.value.reason
    assert not err.value.reason.startswith("[")  # xgrammar's timestamp and source location are cut
    assert byte_cache.stats.size == before.size


def test_cache_is_an_lru_keyed_by_spec():
    cache = GrammarCompilerCache(build_tokenizer_info(ByteTokenizer(), VOCAB, EOS), capacity=2)
    a, b, c = StructuredOutputs(regex="a"), StructuredOutputs(regex="b"), StructuredOutputs(regex="c")
    first = cache.get(a)
    assert cache.get(StructuredOutputs(regex="a")) is first  # equal spec, same grammar
    cache.get(b)
    cache.get(a)  # a is now the most recent
    cache.get(c)  # evicts b
    assert (cache.stats.hits, cache.stats.misses, cache.stats.size) == (2, 3, 2)
    cache.get(a)
    cache.get(b)
    assert (cache.stats.hits, cache.stats.misses) == (3, 4)
    ab = {"type": "object", "properties": {"a": {"enum": [1]}, "b": {"enum": [2]}}, "required": ["a", "b"]}
    ba = {"type": "object", "properties": {"b": {"enum": [2]}, "a": {"enum": [1]}}, "required": ["a", "b"]}
    assert StructuredOutputs(json=ab).key != StructuredOutputs(json=ba).key  # property order is output order


@pytest.mark.parametrize("rows", [[0, 1, 2, 3, 4], [1, 3], [4]])
@pytest.mark.parametrize("vocab", [1000, 1024])
def test_bitmask_application_equals_xgrammar_kernel(rows, vocab):
    gen = torch.Generator().manual_seed(vocab + len(rows))
    logits = torch.randn(5, vocab, generator=gen)
    bitmask = torch.randint(-(2**31), 2**31 - 1, (8, (vocab + 31) // 32), dtype=torch.int32, generator=gen)
    expected = logits.clone()
    xgr.apply_token_bitmask_inplace(expected, bitmask[:5], indices=rows)
    apply_bitmask(logits, bitmask, rows)
    assert torch.equal(logits, expected)
    untouched = [r for r in range(5) if r not in rows]
    assert torch.isfinite(logits[untouched]).all()


def test_bitmask_masks_logit_columns_past_the_mask():
    logits = torch.zeros(2, 70)
    bitmask = torch.full((2, 2), -1, dtype=torch.int32)  # 64 tokens, all allowed
    apply_bitmask(logits, bitmask, [1])
    assert torch.isfinite(logits[0]).all() and torch.isfinite(logits[1, :64]).all()
    assert torch.isinf(logits[1, 64:]).all()


def structured_seq(rid: str, spec: StructuredOutputs) -> Sequence:
    return Sequence(rid, [256, 1, 2], SamplingParams(temperature=0.0, structured_outputs=spec))


def row_allowed(logits: torch.Tensor, row: int) -> list[int]:
    return torch.isfinite(logits[row]).nonzero().flatten().tolist()


def test_manager_follows_the_output_even_after_a_rollback():
    manager = StructuredOutputManager(ByteTokenizer(), VOCAB, EOS)
    spec = StructuredOutputs(regex="(ab|ac)d")
    seq = structured_seq("r", spec)
    manager.add("r", manager.compile("r", seq.params))
    free = Sequence("f", [1], SamplingParams(temperature=0.0))
    for token in b"ab":
        seq.append_token(token)
        assert manager.advance(seq) is None
    logits = torch.zeros(2, VOCAB)
    assert manager.mask_logits(logits, [free, seq]) == []
    assert row_allowed(logits, 1) == [ord("d")] and torch.isfinite(logits[0]).all()
    del seq.output_token_ids[-1], seq.token_ids[-1]  # a rollback the manager did not see: "a"
    seq.append_token(ord("c"))  # "ac"
    logits = torch.zeros(1, VOCAB)
    manager.mask_logits(logits, [seq])
    assert row_allowed(logits, 0) == [ord("d")]
    manager.check_integrity({"r": seq})
    seq.append_token(ord("d"))
    assert manager.advance(seq) is None
    logits = torch.zeros(1, VOCAB)
    manager.mask_logits(logits, [seq])
    assert row_allowed(logits, 0) == list(EOS)
    seq.append_token(EOS[0])
    assert manager.advance(seq) is None
    logits = torch.zeros(1, VOCAB)
    manager.mask_logits(logits, [seq])  # terminated: only the stop tokens
    assert row_allowed(logits, 0) == list(EOS)


def test_manager_reports_a_rejected_token_and_keeps_reporting_it():
    manager = StructuredOutputManager(ByteTokenizer(), VOCAB, EOS)
    seq = structured_seq("r", StructuredOutputs(choice=["yes", "no"]))
    manager.add("r", manager.compile("r", seq.params))
    seq.append_token(ord("x"))
    error = manager.advance(seq)
    assert error is not None and "rejected token 120 at output position 0" in str(error)
    assert manager.advance(seq) is not None
    manager.drop("r")
    assert "r" not in manager and manager.num_requests == 0


def test_manager_rejects_conflicting_params_and_tokenizerless_engines():
    manager = StructuredOutputManager(ByteTokenizer(), VOCAB, EOS)
    spec = StructuredOutputs(regex="a")
    for params, field in [
        (SamplingParams(ignore_eos=True, structured_outputs=spec), "ignore_eos"),
        (SamplingParams(min_tokens=2, structured_outputs=spec), "min_tokens"),
    ]:
        with pytest.raises(InvalidRequestError) as err:
            manager.compile("r", params)
        assert err.value.field == field and err.value.request_id == "r"
    assert manager.compile("r", SamplingParams()) is None
    with pytest.raises(InvalidRequestError) as err:
        StructuredOutputManager(None, VOCAB, EOS).compile("r", SamplingParams(structured_outputs=spec))
    assert err.value.field == "structured_outputs" and "no tokenizer" in err.value.reason


class _AllDead:
    def mask_logits(self, logits: torch.Tensor, seqs: list[Sequence]) -> list[int]:
        logits[1] = float("-inf")
        return [1]


def test_sampler_takes_the_argmax_of_a_row_whose_grammar_allows_nothing():
    seqs = [Sequence(str(i), [1], SamplingParams(temperature=1.0, seed=i)) for i in range(2)]
    logits = torch.zeros(2, 8)
    logits[0, 3] = 50.0
    assert Sampler(_AllDead())(logits, seqs) == [3, 0]  # no NaN sampling, the batch goes on
