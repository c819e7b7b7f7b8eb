"""One side of ``tether bench engine --against vllm``: a child process that loads one system (``tether`` or
``vllm``) and answers measurement commands, one JSON line in on stdin, one JSON line out on stdout (marked
``PEER-ANSWER``: the systems' own logs share stdout).

    python peer_child.py SYSTEM CHECKPOINT_DIR DTYPE THREADS [eager|compile]

(Tether's ``enforce_eager``: ``eager`` True, ``compile`` False, neither None, its default.)

It is run by path with the interpreter of the system's own environment (``.venv`` for Tether, ``.venv-vllm``
for vLLM), so it imports nothing of Tether's at the top: vLLM's environment does not have it. Commands::

    (first, once loaded: {"ready_s": load to first token, "compiled": Tether's forward is compiled})
    {"op": "generate", "prompts": [[token ids], ...], "max_tokens": N}
        -> {"seconds": wall time of one generate call, greedy, EOS ignored, "tokens": [[output ids], ...]}
    {"op": "quit"}

Both systems get the same token ids, greedy sampling, ``ignore_eos``, and the same number of threads: vLLM
through ``VLLM_CPU_OMP_THREADS_BIND`` (its own rule: one OpenMP thread per listed core), Tether through
``EngineConfig.num_threads``.
"""

from __future__ import annotations

import json
import os
import sys
import time

MARK = "PEER-ANSWER "


def load_vllm(checkpoint: str, dtype: str, threads: int):
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{threads - 1}" if threads > 1 else "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from vllm import LLM, SamplingParams

    llm = LLM(model=checkpoint, dtype=dtype, max_model_len=2048, seed=0)

    def generate(prompts: list[list[int]], max_tokens: int) -> list[list[int]]:
        params = SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)
        outs = llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
        return [list(o.outputs[0].token_ids) for o in outs]

    return generate, {}


def load_tether(checkpoint: str, dtype: str, threads: int, enforce_eager: bool | None = None):
    from tether.runtime import LLM, SamplingParams

    llm = LLM(
        checkpoint,
        dtype=dtype,
        num_threads=threads,
        num_kv_blocks=1024,
        max_model_len=2048,
        enforce_eager=enforce_eager,
    )

    def generate(prompts: list[list[int]], max_tokens: int) -> list[list[int]]:
        # ignore_eos alone, as vLLM's side: min_tokens would also ban the end tokens from being *chosen*, and
        # greedy parity would part wherever the model's own choice is <|im_end|>.
        params = SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)
        outs = llm.generate(prompts, params)
        return [list(o.outputs[0].token_ids) for o in outs]

    return generate, {"compiled": llm.engine.compiled}  # what ran, whatever was asked


def answer(doc: dict) -> None:
    """One answer line, marked: the systems' own logs may share stdout."""
    print(MARK + json.dumps(doc), flush=True)


def main(argv: list[str]) -> int:
    system, checkpoint, dtype, threads = argv[0], argv[1], argv[2], int(argv[3])
    enforce_eager = {"eager": True, "compile": False}.get(argv[4]) if len(argv) > 4 else None
    start = time.perf_counter()
    if system == "vllm":
        generate, info = load_vllm(checkpoint, dtype, threads)
    else:
        generate, info = load_tether(checkpoint, dtype, threads, enforce_eager)
    generate([[1, 2, 3, 4]], 2)  # warm-up
    answer({"ready_s": time.perf_counter() - start, **info})
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "quit":
            break
        begin = time.perf_counter()
        tokens = generate(command["prompts"], command["max_tokens"])
        answer({"seconds": time.perf_counter() - begin, "tokens": tokens})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
