"""``tether bench engine``: prefill tokens/s, decode tokens/s at several batch sizes, and the time to first
token of a prompt whose prefix is cached against one whose prefix is not (measured side by side)."""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import asdict, dataclass

from tether.runtime.engine.builder import build_engine
from tether.runtime.engine.config import EngineConfig
from tether.runtime.engine.llm_engine import LLMEngine
from tether.runtime.engine.sampling_params import SamplingParams


@dataclass(frozen=True)
class EngineBenchResult:
    model: str
    device: str
    dtype: str
    prefill_tokens: int
    prefill_tokens_per_s: float
    decode_tokens_per_s: dict[int, float]
    ttft_uncached_s: float
    ttft_cached_s: float
    ttft_cached_over_uncached: float
    prompt_len: int
    cached_prefix_len: int

    def as_dict(self) -> dict:
        return asdict(self)


def _random_prompt(rng: random.Random, n: int, vocab: int) -> list[int]:
    return [rng.randrange(vocab) for _ in range(n)]


def _drain(engine: LLMEngine) -> None:
    while engine.has_unfinished():
        engine.step()


def bench_prefill(engine: LLMEngine, rng: random.Random, batch: int, prompt_len: int) -> tuple[int, float]:
    vocab = min(engine.model_config.vocab_size, 256)
    for _ in range(batch):
        engine.add_request(
            _random_prompt(rng, prompt_len, vocab), SamplingParams(max_tokens=1, temperature=0)
        )
    t0 = time.perf_counter()
    _drain(engine)
    return batch * prompt_len, time.perf_counter() - t0


def bench_decode(engine: LLMEngine, rng: random.Random, batch: int, prompt_len: int, steps: int) -> float:
    """Decode tokens/s for ``batch`` sequences, prefill excluded (timed from every request's first token)."""
    vocab = min(engine.model_config.vocab_size, 256)
    params = SamplingParams(max_tokens=steps + 1, temperature=0, ignore_eos=True)
    for _ in range(batch):
        engine.add_request(_random_prompt(rng, prompt_len, vocab), params)
    started = 0
    while started < batch:
        started += sum(1 for o in engine.step() if len(o.outputs[0].token_ids) == 1)
    t0 = time.perf_counter()
    _drain(engine)
    return batch * steps / (time.perf_counter() - t0)


def bench_ttft(
    engine: LLMEngine, rng: random.Random, prompt_len: int, repeats: int
) -> tuple[float, float, int]:
    """Median TTFT of a cold prompt and of a prompt sharing all but its last block with a prompt just served."""
    bs = engine.config.block_size
    vocab = min(engine.model_config.vocab_size, 256)
    cold, warm = [], []
    cached_len = 0
    for _ in range(repeats):
        base = _random_prompt(rng, prompt_len, vocab)
        cold.append(_one_ttft(engine, base)[0])
        sibling = base[: prompt_len - bs] + _random_prompt(rng, bs, vocab)
        ttft, cached_len = _one_ttft(engine, sibling)
        warm.append(ttft)
    return statistics.median(cold), statistics.median(warm), cached_len


def _one_ttft(engine: LLMEngine, prompt: list[int]) -> tuple[float, int]:
    """The prompt's TTFT and the prompt tokens the prefix cache served at its admission."""
    seq = engine.add_request(prompt, SamplingParams(max_tokens=1, temperature=0))
    t0 = time.perf_counter()
    _drain(engine)
    assert seq.first_token_time is not None
    return time.perf_counter() - t0, seq.num_cached_tokens


def run_engine_bench(
    config: EngineConfig | LLMEngine,
    *,
    prefill_batch: int = 8,
    prefill_len: int = 512,
    decode_batches: tuple[int, ...] = (1, 8, 32),
    decode_prompt_len: int = 128,
    decode_steps: int = 32,
    ttft_prompt_len: int = 1024,
    ttft_repeats: int = 3,
    seed: int = 0,
) -> EngineBenchResult:
    engine = config if isinstance(config, LLMEngine) else build_engine(config)
    config = engine.config
    rng = random.Random(seed)
    bench_prefill(engine, rng, 1, 64)  # warm-up
    tokens, secs = bench_prefill(engine, rng, prefill_batch, prefill_len)
    decode = {b: bench_decode(engine, rng, b, decode_prompt_len, decode_steps) for b in decode_batches}
    cold, warm, cached = bench_ttft(engine, rng, ttft_prompt_len, ttft_repeats)
    engine.check_integrity()
    return EngineBenchResult(
        model=config.model,
        device=str(engine.device),
        dtype=str(engine.dtype).removeprefix("torch."),
        prefill_tokens=tokens,
        prefill_tokens_per_s=tokens / secs,
        decode_tokens_per_s=decode,
        ttft_uncached_s=cold,
        ttft_cached_s=warm,
        ttft_cached_over_uncached=warm / cold,
        prompt_len=ttft_prompt_len,
        cached_prefix_len=cached,
    )


def format_result(r: EngineBenchResult) -> str:
    lines = [
        f"engine bench: model={r.model} device={r.device} dtype={r.dtype}",
        f"  prefill: {r.prefill_tokens_per_s:,.0f} tokens/s ({r.prefill_tokens} tokens)",
    ]
    for b, tps in r.decode_tokens_per_s.items():
        lines.append(f"  decode batch {b:>3}: {tps:,.0f} tokens/s")
    lines.append(
        f"  TTFT {r.prompt_len}-token prompt: uncached {r.ttft_uncached_s * 1e3:.1f} ms, "
        f"cached prefix {r.cached_prefix_len} tokens {r.ttft_cached_s * 1e3:.1f} ms "
        f"(ratio {r.ttft_cached_over_uncached:.3f})"
    )
    return "\n".join(lines)
