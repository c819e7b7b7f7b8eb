"""When a sequence is done, and its text so far (incremental detokenization, stop strings cut off)."""

from __future__ import annotations

from tether.runtime.engine.sequence import FinishReason, Sequence
from tether.runtime.engine.tokenizer import IncrementalDetokenizer, Tokenizer


class StopChecker:
    """Checks, after every appended token: EOS (unless ``ignore_eos``; never before ``min_tokens``), stop token
    ids, stop strings (the text is cut where the stop string starts), ``max_tokens``, and the model's context.
    The token that ended the sequence stays in ``output_token_ids``; neither it nor a stop string appears in
    the text."""

    def __init__(
        self, tokenizer: Tokenizer | None, eos_token_ids: tuple[int, ...], max_model_len: int
    ) -> None:
        self.tokenizer = tokenizer
        self.eos_token_ids = frozenset(eos_token_ids)
        self.max_model_len = max_model_len
        self._detok: dict[str, IncrementalDetokenizer] = {}

    def check(self, seq: Sequence) -> FinishReason | None:
        token = seq.output_token_ids[-1]
        p = seq.params
        if seq.num_output_tokens >= p.min_tokens and (
            (token in self.eos_token_ids and not p.ignore_eos) or token in p.stop_token_ids
        ):
            return self._finish(seq, FinishReason.STOP, flush=True)
        if self.tokenizer is not None:
            detok = self._detok.get(seq.request_id)
            if detok is None:
                detok = self._detok[seq.request_id] = IncrementalDetokenizer(self.tokenizer)
            if self._append_text(seq, detok.push(token)):
                return self._finish(seq, FinishReason.STOP, flush=False)
        if seq.num_output_tokens >= p.max_tokens or seq.num_tokens >= self.max_model_len:
            return self._finish(seq, FinishReason.LENGTH, flush=True)
        return None

    def _append_text(self, seq: Sequence, new_text: str) -> bool:
        """Appends text; True when a stop string now appears (the text is cut where it starts)."""
        if not new_text:
            return False
        stops = seq.params.stop
        before = len(seq.output_text)
        seq.output_text += new_text
        if not stops:
            return False
        window_start = max(0, before - max(len(s) for s in stops) + 1)
        hits = [i for s in stops if (i := seq.output_text.find(s, window_start)) != -1]
        if not hits:
            return False
        seq.output_text = seq.output_text[: min(hits)]
        return True

    def _finish(self, seq: Sequence, reason: FinishReason, *, flush: bool) -> FinishReason:
        detok = self._detok.pop(seq.request_id, None)
        if flush and detok is not None:
            self._append_text(seq, detok.flush())
        return reason

    def forget(self, request_id: str) -> None:
        self._detok.pop(request_id, None)
