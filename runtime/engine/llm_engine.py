"""The synchronous engine core: ``add_request`` / ``step`` / ``abort``. One step is
``scheduler.schedule()`` -> ``runner.run(plan)`` -> ``scheduler.update(plan, tokens)``."""

from __future__ import annotations

import array
import itertools
import logging
import random
import time
from collections.abc import Callable
from collections.abc import Sequence as Seq

import torch

from kvcache import KVCacheManager
from runtime.engine.admission import AdmissionPolicy
from runtime.engine.backend import ExecutionBackend, ModelBackend
from runtime.engine.config import EngineConfig
from runtime.engine.errors import InvalidRequestError
from runtime.engine.outputs import RequestOutput
from runtime.engine.sampling_params import SamplingParams
from runtime.engine.scheduler import Scheduler, SchedulerConfig, SchedulerOutput
from runtime.engine.sequence import FinishReason, ProgramHints, Sequence
from runtime.engine.stop import StopChecker

log = logging.getLogger(__name__)


class LLMEngine:
    def __init__(
        self,
        config: EngineConfig,
        admission: AdmissionPolicy | None = None,
        *,
        backend: ExecutionBackend | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``backend=None`` loads ``config.model``; a simulation passes a cost-model backend and its clock."""
        self.config = config
        self.clock = clock
        self.backend = backend or ModelBackend(
            config.model,
            config.device,
            config.dtype,
            config.seed,
            config.attention_backend,
            config.gpu_memory_utilization,
            config.cpu_kv_cache_gib,
        )
        self.model_config = self.backend.model_config
        self.device = self.backend.device  # where per-request sampling generators live
        self.dtype = self.backend.dtype
        self.tokenizer = self.backend.tokenizer
        tokenizer_eos = self.tokenizer.eos_token_ids if self.tokenizer is not None else ()
        self.eos_token_ids = tuple(dict.fromkeys(self.model_config.eos_token_ids + tuple(tokenizer_eos)))
        num_blocks = config.num_kv_blocks or self.backend.default_num_blocks(config.block_size)
        self.max_model_len = self._max_model_len(num_blocks)
        self.kv_manager = KVCacheManager(
            num_blocks, config.block_size, enable_prefix_caching=config.enable_prefix_caching, clock=clock
        )
        self.runner = self.backend.build_runner(
            num_blocks, config.block_size, self.kv_manager.block_table, self.eos_token_ids
        )
        sched_config = SchedulerConfig(config.max_num_batched_tokens, config.max_num_seqs, self.max_model_len)
        self.scheduler = Scheduler(sched_config, self.kv_manager, admission)
        self.stop = StopChecker(self.tokenizer, self.eos_token_ids, self.max_model_len)
        self._seqs: dict[str, Sequence] = {}
        self._counter = itertools.count()
        self._rng = random.Random(config.seed)
        self.last_plan: SchedulerOutput | None = None

    def _max_model_len(self, num_blocks: int) -> int:
        limits = [self.model_config.max_position_embeddings, num_blocks * self.config.block_size]
        if self.config.max_model_len is not None:
            limits.append(self.config.max_model_len)
        if self.model_config.sliding_window:
            limits.append(self.model_config.sliding_window)  # no sliding-window attention: stay inside it
        return min(limits)

    # -- requests -------------------------------------------------------------------------------------------
    def add_request(
        self,
        prompt: str | Seq[int],
        params: SamplingParams | None = None,
        *,
        request_id: str | None = None,
        hints: ProgramHints | None = None,
        arrival_time: float | None = None,
    ) -> Sequence:
        """Validate and queue a request. Raises ``InvalidRequestError`` naming the request and the field; a
        rejected request changes nothing, so the engine goes on serving the others."""
        index = next(self._counter)
        rid = request_id if request_id is not None else f"req-{index}"
        params = params if params is not None else SamplingParams()
        if rid in self._seqs:
            raise InvalidRequestError(rid, "request_id", "a request with this id is already in flight")
        if not isinstance(params, SamplingParams):
            raise InvalidRequestError(
                rid, "sampling_params", f"expected SamplingParams, got {type(params).__name__}"
            )
        text, ids = self._tokenize(rid, prompt)
        if len(ids) >= self.max_model_len:
            raise InvalidRequestError(
                rid,
                "prompt",
                f"prompt has {len(ids)} tokens; the model's context is {self.max_model_len} "
                "tokens (at least one must remain for output)",
            )
        generator = None
        if not params.greedy:
            seed = params.seed if params.seed is not None else self._rng.getrandbits(63)
            generator = torch.Generator(device=self.device).manual_seed(seed)
        seq = Sequence(
            rid,
            ids,
            params,
            prompt=text,
            arrival_time=arrival_time,
            hints=hints,
            generator=generator,
            seq_index=index,
        )
        self._seqs[rid] = seq
        self.scheduler.add(seq)
        return seq

    def _tokenize(self, rid: str, prompt: str | Seq[int]) -> tuple[str | None, list[int]]:
        if isinstance(prompt, str):
            if not prompt:
                raise InvalidRequestError(rid, "prompt", "prompt is empty")
            if self.tokenizer is None:
                raise InvalidRequestError(rid, "prompt", "this engine has no tokenizer: give token ids")
            return prompt, self.tokenizer.encode(prompt)
        try:
            ids = array.array("q", prompt)  # a C loop: rejects non-integers
        except (TypeError, OverflowError):
            raise InvalidRequestError(rid, "prompt_token_ids", "token ids must be integers") from None
        if not ids:
            raise InvalidRequestError(rid, "prompt_token_ids", "prompt is empty")
        vocab = self.model_config.vocab_size
        if min(ids) < 0 or max(ids) >= vocab:
            bad = [t for t in ids if not 0 <= t < vocab]
            raise InvalidRequestError(rid, "prompt_token_ids", f"token ids outside [0, {vocab}): {bad[:5]}")
        ids = ids.tolist()
        return None, ids

    def abort(self, request_id: str) -> RequestOutput | None:
        seq = self._seqs.pop(request_id, None)
        if seq is None:
            return None
        self.scheduler.finish(seq, FinishReason.ABORT)
        self.stop.forget(request_id)
        seq.finish_time = self.clock()
        return RequestOutput.of(seq)

    def has_unfinished(self) -> bool:
        return self.scheduler.has_unfinished()

    @property
    def num_unfinished(self) -> int:
        return len(self._seqs)

    # -- stepping -------------------------------------------------------------------------------------------
    def step(self) -> list[RequestOutput]:
        """Run one batch. Returns a snapshot of every request that got a token or finished in this step. A
        failing forward pass fails the requests of that batch (``finish_reason == "error"``), not the engine."""
        plan = self.scheduler.schedule()
        if plan.is_empty:
            return []
        self.last_plan = plan
        try:
            sampled = self.runner.run(plan)
        except Exception as exc:  # noqa: BLE001 - the batch fails, the engine keeps serving
            log.exception("step failed for %d requests", len(plan.chunks))
            return [self._fail(chunk.seq, exc) for chunk in plan.chunks]
        now = self.clock()
        outputs = []
        for seq in self.scheduler.update(plan, sampled):
            if seq.first_token_time is None:
                seq.first_token_time = now
            reason = self.stop.check(seq)
            if reason is not None:
                self.scheduler.finish(seq, reason)
                seq.finish_time = now
                del self._seqs[seq.request_id]
            outputs.append(RequestOutput.of(seq))
        return outputs

    def fail_all(self, exc: BaseException) -> list[RequestOutput]:
        """Fail every request in flight (the engine itself hit an error outside a forward pass)."""
        return [self._fail(seq, exc) for seq in list(self._seqs.values())]

    def _fail(self, seq: Sequence, exc: BaseException) -> RequestOutput:
        seq.error = exc
        self.scheduler.finish(seq, FinishReason.ERROR)
        self.stop.forget(seq.request_id)
        seq.finish_time = self.clock()
        self._seqs.pop(seq.request_id, None)
        return RequestOutput.of(seq)

    def check_integrity(self) -> None:
        """The cache's own invariants, plus: blocks are held by exactly the running sequences."""
        self.kv_manager.check_integrity()
        running = {s.request_id for s in self.scheduler.running}
        holders = {rid for rid in self._seqs if self.kv_manager.has_seq(rid)}
        if holders != running:
            raise AssertionError(f"sequences holding blocks {sorted(holders)} != running {sorted(running)}")
        if not self._seqs and self.kv_manager.num_used_blocks:
            raise AssertionError(f"{self.kv_manager.num_used_blocks} blocks in use with no request in flight")
