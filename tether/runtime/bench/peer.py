"""``tether bench engine --against vllm``: Tether against real vLLM (its CPU build, ``make vllm-peer``) on the same
checkpoint, each in its own process, alternating, medians over rounds, with the load average.

Both systems load the same checkpoint directory (for a GGUF model, the folder Tether converted it into) in the
same dtype with the same number of threads, and get identical token ids, greedy, EOS ignored
(``peer_child.py`` is the child on each side). Every round draws fresh random prompts (so no prefix cache
helps) and measures, in each system, alternating which goes first:

- prefill tokens/s: ``prefill_len`` tokens, one output token;
- decode tokens/s at each batch ``b``: ``b * (n - 1) / (t(n) - t(1))`` where ``t(n)`` is the time to generate
  ``n = decode_tokens`` tokens for ``b`` prompts of ``prompt_len`` tokens and ``t(1)`` one token for ``b`` other
  prompts of the same length (the prefill cancels);
- greedy parity, once: ``parity_tokens`` tokens for each of the ``PARITY_TEXTS`` prompts, compared token by token.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

CHILD = Path(__file__).with_name("peer_child.py")
MARK = "PEER-ANSWER "  # peer_child.py's answer lines (it imports nothing of ours, so the constant is twice)
PARITY_TEXTS = (
    "The capital of France is",
    "def fibonacci(n):\n    ",
    "An agent calls a tool, and while the tool runs, the",
    "Here is a short story about a dragon who learns to program:",
)


class PeerError(RuntimeError):
    """A child process that failed to start or answer; names the system and carries its output's tail."""


@dataclass(frozen=True)
class PeerFigures:
    """One system's medians: prefill tokens/s and decode tokens/s per batch."""

    prefill_tps: float
    decode_tps: dict[int, float]
    ready_s: float  # load to the first token (warm-up included)


@dataclass(frozen=True)
class PeerResult:
    checkpoint: str
    dtype: str
    threads: int
    repeats: int
    prefill_len: int
    prompt_len: int
    decode_tokens: int
    parity_tokens: int
    load: tuple[float, float]  # min and max 1-minute load average seen during the measurements
    tether: PeerFigures
    vllm: PeerFigures
    parity: tuple[int, int]  # prompts whose greedy tokens match all the way, of how many
    rounds: list[dict]  # every round's figures per system, in order
    tether_compiled: bool = False  # Tether's forward ran compiled (its child says), else eager

    def as_dict(self) -> dict:
        return asdict(self)


class Child:
    """A ``peer_child.py`` process: ``generate(prompts, max_tokens)`` -> (seconds, output ids)."""

    def __init__(
        self,
        system: str,
        python: str,
        checkpoint: str,
        dtype: str,
        threads: int,
        enforce_eager: bool | None = None,
    ) -> None:
        """``enforce_eager``: Tether's (``EngineConfig``); vLLM's child ignores it."""
        self.system = system
        self.log = tempfile.TemporaryFile("w+")
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        mode = {True: ["eager"], False: ["compile"], None: []}[enforce_eager]
        cmd = [python, str(CHILD), system, checkpoint, dtype, str(threads), *mode]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env, cwd="/"
        )
        ready = self._read()
        self.ready_s = float(ready["ready_s"])
        self.compiled = bool(ready.get("compiled", False))

    def _read(self) -> dict:
        """The next answer; the system's own stdout lines (vLLM logs there) go to the log."""
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait()
                self.log.seek(0)
                tail = self.log.read()[-3000:]
                raise PeerError(f"{self.system} child exited with {self.proc.returncode}: {tail}")
            if line.startswith(MARK):
                return json.loads(line[len(MARK) :])
            self.log.write(line)

    def generate(self, prompts: list[list[int]], max_tokens: int) -> tuple[float, list[list[int]]]:
        self.proc.stdin.write(json.dumps({"op": "generate", "prompts": prompts, "max_tokens": max_tokens}) + "\n")
        self.proc.stdin.flush()
        out = self._read()
        return float(out["seconds"]), out["tokens"]

    def close(self) -> None:
        try:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def random_prompts(rng: random.Random, count: int, length: int, vocab: int) -> list[list[int]]:
    """``count`` prompts of ``length`` token ids drawn from ``[100, vocab)`` (past most special tokens)."""
    return [[rng.randrange(100, vocab) for _ in range(length)] for _ in range(count)]


@dataclass(frozen=True)
class RoundPrompts:
    """One round's prompts, the same for both systems: the prefill prompt, and per decode batch ``b`` the ``b``
    prompts decoded ``n`` tokens and the ``b`` others given one token (``t(1)``)."""

    prefill: list[list[int]]
    decode: dict[int, tuple[list[list[int]], list[list[int]]]]


def measure_round(child: Child, prompts: RoundPrompts, decode_tokens: int) -> dict:
    """One round of every figure on one system: ``prefill_tps`` and ``decode_{b}_tps`` per batch ``b``."""
    seconds, _ = child.generate(prompts.prefill, 1)
    out = {"prefill_tps": sum(len(p) for p in prompts.prefill) / seconds}
    for batch, (decoded, single) in prompts.decode.items():
        t_n, _ = child.generate(decoded, decode_tokens)
        t_1, _ = child.generate(single, 1)
        out[f"decode_{batch}_tps"] = batch * (decode_tokens - 1) / max(t_n - t_1, 1e-9)
    return out


def run_peer(
    checkpoint: str,
    *,
    dtype: str,
    threads: int,
    vllm_python: str,
    tether_python: str,
    vocab_size: int,
    parity_prompts: list[list[int]],
    repeats: int = 3,
    decode_batches: tuple[int, ...] = (1, 8),
    prompt_len: int = 128,
    decode_tokens: int = 32,
    prefill_len: int = 512,
    parity_tokens: int = 32,
    seed: int = 0,
    tether_enforce_eager: bool | None = None,
) -> PeerResult:
    """Both children up (vLLM first: the slower start), ``repeats`` alternating rounds, parity; see the module."""
    children: dict[str, Child] = {}
    try:
        children["vllm"] = Child("vllm", vllm_python, checkpoint, dtype, threads)
        children["tether"] = Child("tether", tether_python, checkpoint, dtype, threads, tether_enforce_eager)
        rng = random.Random(seed)
        rounds, loads = [], []
        for r in range(repeats):
            prompts = RoundPrompts(random_prompts(rng, 1, prefill_len, vocab_size), {})
            for b in decode_batches:
                decoded = random_prompts(rng, b, prompt_len, vocab_size)
                prompts.decode[b] = (decoded, random_prompts(rng, b, prompt_len, vocab_size))
            order = ("tether", "vllm") if r % 2 == 0 else ("vllm", "tether")
            row = {}
            for system in order:
                loads.append(os.getloadavg()[0])
                row[system] = measure_round(children[system], prompts, decode_tokens)
            rounds.append(row)
        outputs = {s: c.generate(parity_prompts, parity_tokens)[1] for s, c in children.items()}
        matches = sum(a == b for a, b in zip(outputs["tether"], outputs["vllm"]))
        figures = {
            s: PeerFigures(
                prefill_tps=statistics.median(row[s]["prefill_tps"] for row in rounds),
                decode_tps={b: statistics.median(row[s][f"decode_{b}_tps"] for row in rounds) for b in decode_batches},
                ready_s=children[s].ready_s,
            )
            for s in children
        }
    finally:
        for child in children.values():
            child.close()
    return PeerResult(
        checkpoint, dtype, threads, repeats, prefill_len, prompt_len, decode_tokens, parity_tokens,
        (min(loads), max(loads)),
        figures["tether"], figures["vllm"], (matches, len(parity_prompts)), rounds,
        children["tether"].compiled,
    )  # fmt: skip


def format_peer(result: PeerResult) -> str:
    t, v = result.tether, result.vllm
    rows = [(f"prefill {result.prefill_len} tokens, tok/s", t.prefill_tps, v.prefill_tps)]
    rows += [(f"decode batch {b}, tok/s", t.decode_tps[b], v.decode_tps[b]) for b in t.decode_tps]
    lines = [
        f"Tether ({'compiled' if result.tether_compiled else 'eager'}) against vLLM, {result.dtype}, "
        f"{result.threads} thread(s) each, own processes, medians of "
        f"{result.repeats} alternating rounds; 1-min load average {result.load[0]:.1f}-{result.load[1]:.1f}",
        f"checkpoint: {result.checkpoint}",
        f"{'figure':<28}{'tether':>10}{'vllm':>10}{'tether/vllm':>13}",
    ]
    lines += [f"{name:<28}{a:>10.1f}{b:>10.1f}{a / b:>12.2f}x" for name, a, b in rows]
    matched, total = result.parity
    lines.append(f"greedy parity: {matched} of {total} prompts x {result.parity_tokens} tokens identical")
    lines.append(f"load to first token: tether {t.ready_s:.1f} s, vllm {v.ready_s:.1f} s")
    return "\n".join(lines)
