"""Token sampling: greedy, temperature, top-k, top-p, a generator per request, grammar masks."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import torch

from tether.runtime.engine.sequence import Sequence

if TYPE_CHECKING:
    from tether.runtime.engine.structured.manager import StructuredOutputManager


class Sampler:
    """Picks one token per row of ``logits: [N, V]`` (float32) for the matching sequences.

    Greedy rows take the argmax. Other rows are scaled by temperature, restricted to the top-k and then the
    smallest nucleus of mass ``top_p``, and sampled with the sequence's own generator (seeded with
    ``seq.seed``, made on ``device`` at its first sampled token and kept while the sequence lives), so a seeded
    request draws the same tokens whatever it is batched with. ``banned`` ids (EOS before ``min_tokens``) get
    probability zero. With ``structured``, the rows of structured requests are first masked to what their
    grammar allows (in place; other rows untouched); a row whose grammar allows nothing takes the argmax,
    which its matcher then rejects (the request fails, the batch goes on).
    """

    def __init__(
        self, structured: StructuredOutputManager | None = None, device: torch.device | str = "cpu"
    ) -> None:
        self.structured = structured
        self.device = torch.device(device)
        self._generators: weakref.WeakKeyDictionary[Sequence, torch.Generator] = weakref.WeakKeyDictionary()

    def generator(self, seq: Sequence) -> torch.Generator | None:
        """The sequence's generator (``None`` without a seed: torch's global one)."""
        if seq.seed is None:
            return None
        gen = self._generators.get(seq)
        if gen is None:
            gen = self._generators[seq] = torch.Generator(device=self.device).manual_seed(seq.seed)
        return gen

    def __call__(
        self, logits: torch.Tensor, seqs: list[Sequence], banned: list[tuple[int, ...]] | None = None
    ) -> list[int]:
        dead: list[int] = []
        if self.structured is not None:
            dead = self.structured.mask_logits(logits, seqs)
        if banned is not None:
            logits = logits.clone()
            for row, ids in enumerate(banned):
                if ids:
                    logits[row, list(ids)] = float("-inf")
        greedy = logits.argmax(dim=-1).tolist()
        out: list[int] = []
        for row, seq in enumerate(seqs):
            p = seq.params
            if p.greedy or (dead and row in dead):
                out.append(greedy[row])
            else:
                out.append(_sample_row(logits[row], p.temperature, p.top_k, p.top_p, self.generator(seq)))
        return out


def _sample_row(
    logits: torch.Tensor, temperature: float, top_k: int, top_p: float, generator: torch.Generator | None
) -> int:
    scaled = logits.float() / temperature  # (V,)
    if 0 < top_k < scaled.shape[0]:
        kth = torch.topk(scaled, top_k).values[-1]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = torch.softmax(scaled, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # mass strictly above each token
        outside = before >= top_p  # a top_p below float32's range (1e-300) rounds to 0: keep the top token
        outside[0] = False
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=generator).item())
