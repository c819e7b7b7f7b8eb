"""The engine tokenizer as xgrammar sees it: the bytes of every token id, which ids stop, which are special.

Special tokens (BOS, ChatML markers, reserved ids, ids past the tokenizer inside the model's vocabulary) are
never allowed by a grammar: xgrammar treats a token whose bytes are empty as special, so their bytes are
blanked. Without this a grammar would accept ``<|im_start|>`` inside a JSON string (its text matches), and the
detokenized output, which skips special tokens, would no longer be what the grammar matched. Stop ids (the
engine's EOS ids) stay allowed exactly where the grammar may end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import xgrammar as xgr

from tether.runtime.engine.tokenizer import ByteTokenizer


class UnsupportedTokenizerError(ValueError):
    """The tokenizer has no byte-exact vocabulary xgrammar can use."""


def build_tokenizer_info(tokenizer: Any, vocab_size: int, stop_token_ids: Sequence[int]) -> xgr.TokenizerInfo:
    """``vocab_size`` is the model's (the logits' width); ids the tokenizer lacks are never allowed.

    A Hugging Face tokenizer (``HFTokenizer``, read through its ``.hf``) goes through
    ``TokenizerInfo.from_huggingface``, then its special tokens are blanked; ``ByteTokenizer`` maps ids
    0..255 to their byte and the rest to special. Anything else raises ``UnsupportedTokenizerError``.
    """
    stops = list(dict.fromkeys(int(t) for t in stop_token_ids))
    if not stops:
        raise UnsupportedTokenizerError("the engine has no EOS token: a grammar could never end")
    hf = getattr(tokenizer, "hf", None)
    if hf is not None:
        try:
            info = xgr.TokenizerInfo.from_huggingface(hf, vocab_size=vocab_size, stop_token_ids=stops)
        except ValueError as exc:  # a tokenizer type xgrammar does not know
            raise UnsupportedTokenizerError(f"xgrammar cannot read this tokenizer: {exc}") from None
        special = _hf_special_ids(hf) - set(stops)
        return _without(info, special, stops) if special else info
    if isinstance(tokenizer, ByteTokenizer):
        vocab = [bytes([i]) if i < 256 else b"" for i in range(vocab_size)]  # 256..: special
        return xgr.TokenizerInfo(vocab, xgr.VocabType.RAW, vocab_size=vocab_size, stop_token_ids=stops)
    raise UnsupportedTokenizerError(
        f"structured outputs need a Hugging Face or byte tokenizer, not {type(tokenizer).__name__}"
    )


def _hf_special_ids(hf: Any) -> set[int]:
    """Ids of the tokenizer's special tokens (its named ones and every added token marked special)."""
    ids = {int(i) for i in getattr(hf, "all_special_ids", ()) or ()}
    added = getattr(hf, "added_tokens_decoder", None) or {}
    ids.update(int(i) for i, tok in added.items() if getattr(tok, "special", False))
    return ids


def _without(info: xgr.TokenizerInfo, special: set[int], stops: list[int]) -> xgr.TokenizerInfo:
    """The same vocabulary (already decoded to raw bytes) with ``special`` ids blanked."""
    vocab = [b"" if i in special else tok for i, tok in enumerate(info.decoded_vocab)]
    return xgr.TokenizerInfo(
        vocab,
        xgr.VocabType.RAW,
        vocab_size=info.vocab_size,
        stop_token_ids=stops,
        add_prefix_space=info.add_prefix_space,
    )
