"""Tether against ``transformers`` ``generate`` on the same weights and prompts, in one process, interleaved
(``tether bench engine --model smollm2``), plus the per-step cost of structured-generation masks.

Both run the model in the same dtype on the same threads. Each figure is the median of ``repeats`` rounds;
within a round Tether and transformers run back to back on identical prompts, so machine noise hits both.

- prefill tokens/s: one prompt of ``prefill_len`` tokens (Tether: a 1-token request; transformers: one
  forward pass over the prompt).
- decode tokens/s at batch 1: ``decode_tokens`` greedy tokens after the first (transformers: the time of
  ``generate(n)`` minus ``generate(1)`` on the same prompt).
- decode tokens/s at batch ``b``: all ``b`` sequences' tokens per second; compared with transformers at batch 1
  run ``b`` times in a row (what an agent framework calling ``generate`` per request gets).
- mask overhead: mean decode step at batch ``mask_batch`` with every request under a JSON schema, against the
  same batch unconstrained; the schema needs a long string, so no request can finish inside the window.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from tether.runtime.engine.llm_engine import LLMEngine
from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.structured import StructuredOutputs

PROMPT_TEXT = (
    "Agents call tools; while a tool runs, Tether keeps the program's KV cache warm so that the next turn "
    "does not re-prefill its whole context. Write a long story about a dragon who learns to program. "
)
MASK_SCHEMA = {
    "type": "object",
    "properties": {"story": {"type": "string", "minLength": 2000}},
    "required": ["story"],
}


@dataclass(frozen=True)
class VersusResult:
    model: str
    dtype: str
    threads: int
    repeats: int
    prefill_len: int
    decode_tokens: int
    tether_prefill_tps: float
    hf_prefill_tps: float
    tether_decode_tps: dict[int, float]  # batch -> aggregate tokens/s
    hf_decode_b1_tps: float
    mask_batch: int
    free_step_ms: float
    masked_step_ms: float

    @property
    def mask_overhead(self) -> float:
        return self.masked_step_ms / self.free_step_ms - 1.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mask_overhead": self.mask_overhead}


def chat_prompt(engine: LLMEngine, n: int, salt: int = 0) -> list[int]:
    """A real chat prompt of exactly ``n`` tokens (the text repeated and cut); ``salt`` varies the first
    user token so that no two prompts share cached blocks."""
    assert engine.tokenizer is not None
    text = f"[{salt}] " + PROMPT_TEXT * (1 + 2 * n // len(PROMPT_TEXT.split()))
    ids = engine.tokenizer.encode(engine.tokenizer.apply_chat_template([{"role": "user", "content": text}]))
    return ids[:n]


def _drain(engine: LLMEngine) -> None:
    while engine.has_unfinished():
        engine.step()


def tether_prefill(engine: LLMEngine, prompt: list[int]) -> float:
    engine.add_request(prompt, SamplingParams(temperature=0.0, max_tokens=1))
    t0 = time.perf_counter()
    _drain(engine)
    return len(prompt) / (time.perf_counter() - t0)


def tether_decode(
    engine: LLMEngine, prompts: list[list[int]], n: int, structured: StructuredOutputs | None = None
) -> tuple[float, float]:
    """(aggregate decode tokens/s, mean step ms) over ``n - 1`` steps after every request's first token."""
    # a grammar must be able to end the output, so only free requests ignore EOS
    params = SamplingParams(
        temperature=0.0, max_tokens=n, ignore_eos=structured is None, structured_outputs=structured
    )
    for p in prompts:
        engine.add_request(p, params)
    started = 0
    while started < len(prompts):
        started += sum(1 for o in engine.step() if len(o.outputs[0].token_ids) == 1)
    t0 = time.perf_counter()
    steps = 0
    while engine.has_unfinished():
        engine.step()
        steps += 1
    secs = time.perf_counter() - t0
    return len(prompts) * (n - 1) / secs, 1e3 * secs / max(1, steps)


def hf_prefill(hf: Any, prompt: list[int]) -> float:
    ids = torch.tensor([prompt])
    with torch.inference_mode():
        t0 = time.perf_counter()
        hf(ids, use_cache=False)
        return len(prompt) / (time.perf_counter() - t0)


def hf_generate_secs(hf: Any, prompt: list[int], n: int) -> float:
    ids = torch.tensor([prompt])
    t0 = time.perf_counter()
    hf.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=n,
        min_new_tokens=n,
        do_sample=False,
        pad_token_id=0,
    )
    return time.perf_counter() - t0


def hf_decode_b1(hf: Any, prompt: list[int], n: int) -> float:
    return (n - 1) / (hf_generate_secs(hf, prompt, n) - hf_generate_secs(hf, prompt, 1))


def load_transformers(engine: LLMEngine) -> Any:
    """transformers' own model class over the checkpoint Tether loaded (for a GGUF file or named model, the
    converted directory: the same dequantized weights), in Tether's dtype."""
    from transformers import AutoModelForCausalLM

    from tether.runtime.engine.models.sources import checkpoint_dir

    path = checkpoint_dir(engine.config.model)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=engine.dtype, attn_implementation="sdpa")
    return model.eval()


def run_versus(
    engine: LLMEngine,
    *,
    prefill_len: int = 512,
    decode_prompt_len: int = 64,
    decode_tokens: int = 32,
    batches: tuple[int, ...] = (1, 8),
    mask_batch: int = 32,
    repeats: int = 3,
) -> VersusResult:
    hf = load_transformers(engine)
    salt = iter(range(1_000_000))
    tp, hp = [], []
    td: dict[int, list[float]] = {b: [] for b in batches}
    hd, free, masked = [], [], []
    structured = StructuredOutputs(json=MASK_SCHEMA)
    tether_decode(engine, [chat_prompt(engine, decode_prompt_len, next(salt))], 4)  # warm-up
    hf_decode_b1(hf, chat_prompt(engine, decode_prompt_len), 4)
    for _ in range(repeats):
        prompt = chat_prompt(engine, prefill_len, next(salt))
        tp.append(tether_prefill(engine, prompt))
        hp.append(hf_prefill(hf, prompt))
        for b in batches:
            prompts = [chat_prompt(engine, decode_prompt_len, next(salt)) for _ in range(b)]
            td[b].append(tether_decode(engine, prompts, decode_tokens)[0])
        hd.append(hf_decode_b1(hf, chat_prompt(engine, decode_prompt_len, next(salt)), decode_tokens))
        prompts = [chat_prompt(engine, decode_prompt_len, next(salt)) for _ in range(mask_batch)]
        free.append(tether_decode(engine, prompts, decode_tokens)[1])
        prompts = [chat_prompt(engine, decode_prompt_len, next(salt)) for _ in range(mask_batch)]
        masked.append(tether_decode(engine, prompts, decode_tokens, structured)[1])
    engine.check_integrity()
    med = statistics.median
    return VersusResult(
        model=engine.config.model,
        dtype=str(engine.dtype).removeprefix("torch."),
        threads=torch.get_num_threads(),
        repeats=repeats,
        prefill_len=prefill_len,
        decode_tokens=decode_tokens,
        tether_prefill_tps=med(tp),
        hf_prefill_tps=med(hp),
        tether_decode_tps={b: med(v) for b, v in td.items()},
        hf_decode_b1_tps=med(hd),
        mask_batch=mask_batch,
        free_step_ms=med(free),
        masked_step_ms=med(masked),
    )


def format_versus(r: VersusResult) -> str:
    lines = [
        f"versus transformers: model={r.model} dtype={r.dtype} threads={r.threads} "
        f"(median of {r.repeats} interleaved rounds)",
        f"  prefill {r.prefill_len} tokens: tether {r.tether_prefill_tps:,.0f} tok/s, transformers "
        f"{r.hf_prefill_tps:,.0f} tok/s ({r.tether_prefill_tps / r.hf_prefill_tps:.2f}x)",
        f"  transformers generate, batch 1: {r.hf_decode_b1_tps:,.1f} decode tok/s",
    ]
    for b, tps in r.tether_decode_tps.items():
        lines.append(
            f"  tether decode batch {b}: {tps:,.1f} tok/s ({tps / r.hf_decode_b1_tps:.2f}x transformers batch 1)"
        )
    lines.append(
        f"  structured-output masks at batch {r.mask_batch}: step {r.masked_step_ms:.1f} ms vs "
        f"{r.free_step_ms:.1f} ms free ({r.mask_overhead:+.1%})"
    )
    return "\n".join(lines)
