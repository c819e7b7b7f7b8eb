"""Builds the flat inputs of a step, runs the model over the paged KV cache, samples.

For the chunks of a step (sequence s has new tokens ``start_s .. end_s - 1``)::

    input_ids    [T]        the new tokens of all sequences, concatenated
    positions    [T]        start_s .. end_s - 1 per sequence
    slot_mapping [T]        block_table[s][pos // bs] * bs + pos % bs
    cu_seqlens_q [S+1]      offsets of each sequence's new tokens in the flat batch
    kv_lens      [S]        end_s: cached + new tokens
    block_table  [S, maxB]  padded with 0 (never read past kv_lens)
    logits rows             the last new token of every chunk that reaches its sequence's end
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from tether.kvcache import PendingCopies
from tether.runtime.engine.attention import AttentionBackend, AttentionMetadata
from tether.runtime.engine.compiled import CompiledForward
from tether.runtime.engine.models.config import ModelConfig
from tether.runtime.engine.runner_output import RunnerOutput
from tether.runtime.engine.sampler import Sampler
from tether.runtime.engine.scheduler import SchedulerOutput
from tether.runtime.engine.sequence import Sequence
from tether.runtime.engine.structured.manager import StructuredOutputManager


@dataclass(frozen=True)
class StepInputs:
    input_ids: torch.Tensor
    positions: torch.Tensor
    meta: AttentionMetadata
    logits_indices: torch.Tensor
    sampled_seqs: tuple[Sequence, ...]


class KVCacheTensors:
    """The paged cache of every layer: ``k[layer], v[layer]: [num_blocks, block_size, Hkv, D]``."""

    def __init__(
        self,
        config: ModelConfig,
        num_blocks: int,
        block_size: int,
        device: torch.device,
        dtype: torch.dtype,
        num_cpu_blocks: int = 0,
    ) -> None:
        shape = (config.num_layers, num_blocks, block_size, config.num_kv_heads, config.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        cpu_shape = (config.num_layers, num_cpu_blocks, *shape[2:])
        pin = device.type == "cuda"
        # The host tier is never read before a to_cpu copy wrote the block (kvcache's contract), so it is left
        # uninitialised (zero-filling gigabytes of host memory at start-up would be wasted work).
        self.k_cpu = torch.empty(cpu_shape, dtype=dtype, pin_memory=pin)
        self.v_cpu = torch.empty(cpu_shape, dtype=dtype, pin_memory=pin)
        self.num_blocks = num_blocks
        self.block_size = block_size

    def copy_blocks(self, copies: PendingCopies) -> None:
        """All GPU -> CPU copies first, then CPU -> GPU (the kvcache contract: a block evicted to the host and
        refilled in the same step keeps its old contents on the host)."""
        if copies.to_cpu:
            src = torch.tensor([c.src for c in copies.to_cpu], device=self.k.device)
            dst = torch.tensor([c.dst for c in copies.to_cpu])
            self.k_cpu[:, dst] = self.k[:, src].to("cpu")
            self.v_cpu[:, dst] = self.v[:, src].to("cpu")
        if copies.to_gpu:
            src = torch.tensor([c.src for c in copies.to_gpu])
            dst = torch.tensor([c.dst for c in copies.to_gpu], device=self.k.device)
            self.k[:, dst] = self.k_cpu[:, src].to(self.k.device, non_blocking=True)
            self.v[:, dst] = self.v_cpu[:, src].to(self.k.device, non_blocking=True)

    @staticmethod
    def bytes_per_block(config: ModelConfig, block_size: int, dtype: torch.dtype) -> int:
        elem = torch.empty((), dtype=dtype).element_size()
        return 2 * config.num_layers * block_size * config.num_kv_heads * config.head_dim * elem


class ModelRunner:
    def __init__(
        self,
        model: torch.nn.Module,
        config: ModelConfig,
        kv: KVCacheTensors,
        backend: AttentionBackend,
        block_tables: Callable[[str], list[int]],
        device: torch.device,
        eos_token_ids: tuple[int, ...] = (),
        structured: StructuredOutputManager | None = None,
        compiled: CompiledForward | None = None,
    ) -> None:
        """``structured``: the engine's grammars; the sampler masks structured requests' rows with them.
        ``compiled``: the model's compiled forward (``compiled.py``), else the model runs eager."""
        self.model = model
        self.config = config
        self.kv = kv
        self.backend = backend
        self.block_tables = block_tables  # request_id -> list[int] (the kvcache manager's view)
        self.device = device
        self.eos_token_ids = eos_token_ids
        self.sampler = Sampler(structured, device)
        self.compiled = compiled

    def prepare(self, out: SchedulerOutput) -> StepInputs:
        bs = self.kv.block_size
        input_ids: list[int] = []
        positions: list[int] = []
        slots: list[int] = []
        cu = [0]
        kv_lens: list[int] = []
        tables: list[list[int]] = []
        logits_indices: list[int] = []
        sampled: list[Sequence] = []
        for chunk in out.chunks:
            seq = chunk.seq
            table = self.block_tables(seq.request_id)
            tokens = seq.token_ids
            for pos in range(chunk.start, chunk.end):
                input_ids.append(tokens[pos])
                positions.append(pos)
                slots.append(table[pos // bs] * bs + pos % bs)
            cu.append(cu[-1] + chunk.num_new_tokens)
            kv_lens.append(chunk.end)
            tables.append(table)
            if chunk.samples:
                logits_indices.append(cu[-1] - 1)
                sampled.append(seq)
        width = max(len(t) for t in tables)
        padded = [t + [0] * (width - len(t)) for t in tables]
        dev = self.device
        meta = AttentionMetadata(
            slot_mapping=torch.tensor(slots, dtype=torch.int64, device=dev),
            block_table=torch.tensor(padded, dtype=torch.int32, device=dev),
            cu_seqlens_q=torch.tensor(cu, dtype=torch.int32, device=dev),
            kv_lens=torch.tensor(kv_lens, dtype=torch.int32, device=dev),
            max_q_len=max(c.num_new_tokens for c in out.chunks),
        )
        return StepInputs(
            input_ids=torch.tensor(input_ids, dtype=torch.int64, device=dev),
            positions=torch.tensor(positions, dtype=torch.int64, device=dev),
            meta=meta,
            logits_indices=torch.tensor(logits_indices, dtype=torch.int64, device=dev),
            sampled_seqs=tuple(sampled),
        )

    @torch.inference_mode()
    def forward_logits(self, inputs: StepInputs) -> torch.Tensor:
        """Float32 logits ``[N, V]`` for the sampled rows of the step."""
        meta = inputs.meta

        def attn(layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return self.backend.forward(q, k, v, self.kv.k[layer], self.kv.v[layer], meta)

        if self.compiled is not None:
            return self.compiled(inputs.input_ids, inputs.positions, inputs.logits_indices, attn)  # (N, V)
        hidden = self.model(inputs.input_ids, inputs.positions, attn)  # (T, H)
        return self.model.compute_logits(hidden[inputs.logits_indices])  # (N, V)

    def run(self, out: SchedulerOutput, copies: PendingCopies | None = None) -> RunnerOutput:
        """Execute a plan (after the KV block copies it needs); returns the tokens of the chunks that
        sample."""
        if copies is not None:
            self.kv.copy_blocks(copies)
        inputs = self.prepare(out)
        logits = self.forward_logits(inputs)
        if not inputs.sampled_seqs:
            return RunnerOutput()
        seqs = list(inputs.sampled_seqs)
        banned = [self._banned(s) for s in seqs]
        tokens = self.sampler(logits, seqs, banned if any(banned) else None)
        return RunnerOutput.of((seq.request_id for seq in seqs), tokens)

    def _banned(self, seq: Sequence) -> tuple[int, ...]:
        """Ending tokens are not allowed before ``min_tokens`` outputs."""
        if seq.num_output_tokens >= seq.params.min_tokens:
            return ()
        return tuple(self.eos_token_ids) + seq.params.stop_token_ids
