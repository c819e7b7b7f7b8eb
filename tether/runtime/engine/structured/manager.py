"""``StructuredOutputManager``: the engine's grammars. Compiles specs at ``add_request`` (through the cache),
keeps one ``xgrammar.GrammarMatcher`` per structured request, masks the sampled rows of a step, and advances
each matcher with the tokens the request receives.

The invariant: a request's matcher has accepted exactly its output tokens. Every mask fill and every advance
first checks it (the accepted tokens are kept beside the matcher) and, if the output changed otherwise than by
appending (a rollback), rolls the matcher back to the common prefix and replays the rest; a token the matcher
rejects fails the request (``StructuredOutputError``), never silently. Preemption by recompute keeps the output
tokens, so it needs no replay; neither does a prefix-cache hit (the grammar sees only output tokens).

xgrammar is imported on the first structured request, so engines that never see one do not pay for it.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from tether.runtime.engine.errors import InvalidRequestError, StructuredOutputError
from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.sequence import Sequence
from tether.runtime.engine.structured.params import FIELD

if TYPE_CHECKING:
    import xgrammar as xgr

    from tether.runtime.engine.structured.compiler import CacheStats, GrammarCompilerCache


@dataclass
class _Matcher:
    matcher: xgr.GrammarMatcher
    accepted: list[int] = field(default_factory=list)  # the output tokens the matcher has accepted
    error: str | None = None  # set when it could not follow the output: the request must fail


class StructuredOutputManager:
    """Owned by the engine; the sampler calls ``mask_logits`` for each step's sampled rows and the engine
    calls ``advance`` once a request received its token. ``tokenizer=None`` (a simulation) rejects every
    structured request."""

    def __init__(
        self, tokenizer: Any, vocab_size: int, stop_token_ids: Seq[int], *, cache_size: int = 256
    ) -> None:
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self.stop_token_ids = tuple(stop_token_ids)
        self.cache_size = cache_size
        self._cache: GrammarCompilerCache | None = None
        self._batch: Any = None  # xgrammar.BatchGrammarMatcher, built with the cache
        self._matchers: dict[str, _Matcher] = {}
        self._bitmask: torch.Tensor | None = None  # int32 [capacity, ceil(V / 32)], reused across steps
        self._stop_only: torch.Tensor | None = None  # int32 [ceil(V / 32)]: only the stop tokens

    # -- requests -------------------------------------------------------------------------------------------
    def compile(self, request_id: str, params: SamplingParams) -> xgr.CompiledGrammar | None:
        """The compiled grammar of ``params.structured_outputs`` (cached; ``None`` without one). Raises
        ``InvalidRequestError`` naming ``structured_outputs.<kind>`` when it does not compile. The grammar
        must be able to end the output, so ``ignore_eos`` and ``min_tokens > 0`` are rejected with it (a
        grammar that completes early would leave no token to sample)."""
        spec = params.structured_outputs
        if spec is None:
            return None  # before importing xgrammar: an unconstrained first request does not wait 0.8 s for it
        from tether.runtime.engine.structured.compiler import GrammarCompileError

        for name, conflicts in (("ignore_eos", params.ignore_eos), ("min_tokens", params.min_tokens > 0)):
            if conflicts:
                raise InvalidRequestError(
                    request_id, name, f"cannot be combined with {FIELD}: the grammar ends the output"
                )
        cache = self._compiler(request_id)
        try:
            return cache.get(spec)
        except GrammarCompileError as exc:
            raise InvalidRequestError(request_id, exc.field, exc.reason) from None

    def add(self, request_id: str, grammar: xgr.CompiledGrammar) -> None:
        """A fresh matcher for a request about to be queued."""
        import xgrammar as xgr

        self._matchers[request_id] = _Matcher(xgr.GrammarMatcher(grammar))

    def drop(self, request_id: str) -> None:
        """Forget a finished, aborted or failed request (a no-op for others)."""
        self._matchers.pop(request_id, None)

    def __contains__(self, request_id: str) -> bool:
        return request_id in self._matchers

    @property
    def num_requests(self) -> int:
        return len(self._matchers)

    @property
    def cache_stats(self) -> CacheStats | None:
        """Compiled-grammar cache hits and misses; ``None`` before the first structured request."""
        return self._cache.stats if self._cache is not None else None

    def _compiler(self, request_id: str) -> GrammarCompilerCache:
        if self._cache is None:
            if self.tokenizer is None:
                raise InvalidRequestError(
                    request_id, FIELD, "this engine has no tokenizer, so it cannot follow a grammar"
                )
            import xgrammar as xgr

            from tether.runtime.engine.structured.compiler import GrammarCompilerCache
            from tether.runtime.engine.structured.tokenizer_info import (
                UnsupportedTokenizerError,
                build_tokenizer_info,
            )

            try:
                info = build_tokenizer_info(self.tokenizer, self.vocab_size, self.stop_token_ids)
            except UnsupportedTokenizerError as exc:
                raise InvalidRequestError(request_id, FIELD, str(exc)) from None
            self._cache = GrammarCompilerCache(info, self.cache_size)
            self._batch = xgr.BatchGrammarMatcher("auto")
        return self._cache

    # -- a step ---------------------------------------------------------------------------------------------
    def mask_logits(self, logits: torch.Tensor, seqs: Seq[Sequence]) -> list[int]:
        """In place: the rows of ``logits [N, V]`` whose ``seqs[row]`` is structured keep only the tokens its
        grammar allows next (only stop tokens once it is terminated); other rows are untouched. Returns the
        structured rows that allow no token at all (their sample is rejected and the request fails)."""
        if not self._matchers:
            return []
        rows: list[int] = []
        live: list[Any] = []
        live_rows: list[int] = []
        fixed: list[int] = []  # rows that only allow stop tokens
        for row, seq in enumerate(seqs):
            state = self._matchers.get(seq.request_id)
            if state is None:
                continue
            rows.append(row)
            self._sync(state, seq.output_token_ids)
            if state.error is not None or state.matcher.is_terminated():
                fixed.append(row)
            else:
                live.append(state.matcher)
                live_rows.append(row)
        if not rows:
            return []
        from tether.runtime.engine.structured.bitmask import apply_bitmask

        bitmask = self._rows(len(seqs))  # (>= N, W)
        if live:
            self._batch.batch_fill_next_token_bitmask(live, bitmask, live_rows)
        for row in fixed:
            bitmask[row] = self._stop_only
        index = torch.tensor(rows)
        dead = (bitmask.index_select(0, index) == 0).all(dim=1)  # (R,)
        with torch.inference_mode():  # the logits come from an inference-mode forward
            apply_bitmask(logits, bitmask, rows)
        return [rows[i] for i in dead.nonzero().flatten().tolist()]

    def advance(self, seq: Sequence) -> StructuredOutputError | None:
        """The matcher accepts the request's new output tokens (normally the one just sampled). Returns the
        error to fail the request with when a token is rejected; ``None`` otherwise (and for requests
        without a grammar)."""
        state = self._matchers.get(seq.request_id)
        if state is None:
            return None
        self._sync(state, seq.output_token_ids)
        if state.error is not None:
            return StructuredOutputError(seq.request_id, state.error)
        return None

    def _sync(self, state: _Matcher, output: list[int]) -> None:
        """Make the matcher have accepted exactly ``output``: roll back past the common prefix, accept the
        rest. A rejected token leaves ``state.error`` set (the matcher stays at the last accepted token)."""
        accepted = state.accepted
        n = len(accepted)
        if state.error is not None or (n == len(output) and accepted == output):
            return
        if n < len(output) and accepted == output[:n]:
            common = n  # the usual case: tokens were appended
        else:
            common = next(
                (i for i, (a, b) in enumerate(zip(accepted, output)) if a != b), min(n, len(output))
            )
            if n > common:
                state.matcher.rollback(n - common)
                del accepted[common:]
        for token in output[common:]:
            if not state.matcher.accept_token(token):
                state.error = (
                    f"the grammar rejected token {token} at output position {len(accepted)} "
                    f"({'after the grammar terminated' if state.matcher.is_terminated() else 'not allowed here'})"
                )
                return
            accepted.append(token)

    def _rows(self, n: int) -> torch.Tensor:
        """The reused bitmask, grown to at least ``n`` rows (powers of two)."""
        from tether.runtime.engine.structured.bitmask import allocate_bitmask

        if self._bitmask is None or self._bitmask.shape[0] < n:
            self._bitmask = allocate_bitmask(max(8, 1 << (n - 1).bit_length()), self.vocab_size)
        if self._stop_only is None:
            words = [0] * self._bitmask.shape[1]
            for t in self.stop_token_ids:
                if 0 <= t < self.vocab_size:
                    words[t // 32] |= 1 << (t % 32)
            signed = [w - (1 << 32) if w >= 1 << 31 else w for w in words]  # int32 bit patterns
            self._stop_only = torch.tensor(signed, dtype=torch.int32)  # (W,)
        return self._bitmask

    def check_integrity(self, seqs: dict[str, Sequence]) -> None:
        """Matchers exist for exactly the structured requests in flight, each in step with its output."""
        structured = {rid for rid, s in seqs.items() if s.params.structured_outputs is not None}
        if set(self._matchers) != structured:
            raise AssertionError(
                f"matchers {sorted(self._matchers)} != structured requests {sorted(structured)}"
            )
        for rid, state in self._matchers.items():
            if state.error is None and state.accepted != seqs[rid].output_token_ids:
                raise AssertionError(
                    f"{rid}: the matcher accepted {len(state.accepted)} tokens, "
                    f"the output has {seqs[rid].num_output_tokens}"
                )
