from __future__ import annotations

from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.sequence import FinishReason, Sequence
from tether.runtime.engine.stop import StopChecker
from tether.runtime.engine.tokenizer import ByteTokenizer

TOK = ByteTokenizer()
EOS = TOK.eos_token_ids[0]


def feed(tokens: list[int], **params) -> tuple[Sequence, list[FinishReason | None]]:
    checker = StopChecker(TOK, TOK.eos_token_ids, max_model_len=100)
    seq = Sequence("r", [1, 2], SamplingParams(temperature=0.0, **params))
    reasons = []
    for t in tokens:
        seq.append_token(t)
        reasons.append(checker.check(seq))
        if reasons[-1] is not None:
            break
    return seq, reasons


def b(text: str) -> list[int]:
    return list(text.encode())


def test_eos_stops_and_is_kept_in_tokens_not_text():
    seq, reasons = feed(b("hi") + [EOS] + b("x"), max_tokens=10)
    assert reasons == [None, None, FinishReason.STOP]
    assert seq.output_token_ids == b("hi") + [EOS] and seq.output_text == "hi"


def test_ignore_eos_keeps_going_until_max_tokens():
    seq, reasons = feed(b("hi") + [EOS] + b("xy"), max_tokens=5, ignore_eos=True)
    assert reasons == [None, None, None, None, FinishReason.LENGTH]
    assert seq.output_text == "hixy"


def test_eos_before_min_tokens_does_not_stop():
    _, reasons = feed([EOS, 65, EOS], max_tokens=10, min_tokens=2)
    assert reasons == [None, None, FinishReason.STOP]


def test_stop_string_across_tokens_is_cut_from_the_text():
    seq, reasons = feed(b("abcdef"), max_tokens=10, stop=("cd", "zz"))
    assert reasons == [None, None, None, FinishReason.STOP]
    assert seq.output_text == "ab"


def test_stop_token_id_ends_without_its_text():
    seq, reasons = feed(b("ab!c"), max_tokens=10, stop_token_ids=(ord("!"),))
    assert reasons[-1] is FinishReason.STOP and seq.output_text == "ab"


def test_multibyte_character_split_over_tokens_is_held_back_then_completed():
    seq, reasons = feed(b("é€"), max_tokens=5)
    assert reasons == [None] * 4 + [FinishReason.LENGTH]
    assert seq.output_text == "é€"


def test_context_limit_ends_with_length():
    checker = StopChecker(TOK, TOK.eos_token_ids, max_model_len=4)
    seq = Sequence("r", [1, 2, 3], SamplingParams(temperature=0.0, max_tokens=10))
    seq.append_token(65)
    assert checker.check(seq) is FinishReason.LENGTH
