"""Random paged batches for the kernel tests: pages randomly permuted, lengths not multiples of the page."""

from __future__ import annotations

from dataclasses import dataclass

import torch

TOLERANCES = {  # (atol, rtol) for o; lse is compared with the fp32 row
    torch.float32: (2e-5, 2e-5),
    torch.float16: (4e-3, 4e-3),
    torch.bfloat16: (3e-2, 3e-2),
}


@dataclass(frozen=True)
class PagedBatch:
    q: torch.Tensor  # [T, Hq, D]
    k_cache: torch.Tensor  # [num_blocks, block_size, Hkv, D]
    v_cache: torch.Tensor
    block_table: torch.Tensor  # int32 [S, max_blocks]
    cu_seqlens_q: torch.Tensor  # int32 [S+1]
    kv_lens: torch.Tensor  # int32 [S]
    prefix_blocks: torch.Tensor  # int32 [prefix_len // block_size]: shared by every sequence
    prefix_len: int

    def args(self) -> tuple[torch.Tensor, ...]:
        return (self.q, self.k_cache, self.v_cache, self.block_table, self.cu_seqlens_q, self.kv_lens)

    def with_prefix(self) -> PagedBatch:
        """The same batch with the shared prefix folded into every sequence's own table."""
        rows = self.prefix_blocks.view(1, -1).expand(self.block_table.shape[0], -1)
        return PagedBatch(
            self.q, self.k_cache, self.v_cache, torch.cat([rows, self.block_table], dim=1).contiguous(),
            self.cu_seqlens_q, self.kv_lens + self.prefix_len, self.prefix_blocks[:0], 0,
        )  # fmt: skip


def make_batch(
    seqs: list[tuple[int, int]],
    hq: int,
    hkv: int,
    head_dim: int,
    dtype: torch.dtype,
    device: torch.device,
    *,
    prefix_len: int = 0,
    block_size: int = 16,
    seed: int = 0,
) -> PagedBatch:
    """``seqs``: (cached tokens, new tokens) per sequence, after the shared ``prefix_len`` tokens."""
    g = torch.Generator().manual_seed(seed)
    need = prefix_len // block_size + sum(-(-(c + n) // block_size) for c, n in seqs)
    num_blocks = need + 5
    perm = torch.randperm(num_blocks, generator=g).tolist()
    prefix = [perm.pop() for _ in range(prefix_len // block_size)]
    tables = [[perm.pop() for _ in range(-(-(c + n) // block_size))] for c, n in seqs]
    width = max(1, max(len(t) for t in tables))
    new = [n for _, n in seqs]

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).to(dtype).to(device)

    return PagedBatch(
        q=rand(sum(new), hq, head_dim),
        k_cache=rand(num_blocks, block_size, hkv, head_dim),
        v_cache=rand(num_blocks, block_size, hkv, head_dim),
        block_table=torch.tensor(
            [t + [0] * (width - len(t)) for t in tables], dtype=torch.int32, device=device
        ),
        cu_seqlens_q=torch.tensor(
            [0] + torch.tensor(new).cumsum(0).tolist(), dtype=torch.int32, device=device
        ),
        kv_lens=torch.tensor([c + n for c, n in seqs], dtype=torch.int32, device=device),
        prefix_blocks=torch.tensor(prefix, dtype=torch.int32, device=device),
        prefix_len=prefix_len,
    )


def assert_attention_close(
    got: tuple[torch.Tensor, torch.Tensor], expected: tuple[torch.Tensor, torch.Tensor]
) -> None:
    """``o`` within the dtype's tolerance; ``lse`` close and ``-inf`` exactly where expected; no NaN."""
    o, lse = got
    eo, else_ = expected
    assert o.dtype == eo.dtype and o.shape == eo.shape and lse.dtype == torch.float32
    assert not torch.isnan(o).any() and not torch.isnan(lse).any()
    atol, rtol = TOLERANCES[o.dtype]
    torch.testing.assert_close(o.float().cpu(), eo.float().cpu(), atol=atol, rtol=rtol)
    assert torch.equal(torch.isinf(lse).cpu(), torch.isinf(else_).cpu())
    finite = torch.isfinite(else_)
    torch.testing.assert_close(lse[finite].cpu(), else_[finite].cpu(), atol=1e-4, rtol=1e-4)
