"""``tether bench engine --against vllm`` (tether/runtime/bench/peer.py): the rounds, medians, parity and table with a
fake child (one layer), and the real child protocol on a small GGUF checkpoint with Tether on both ends."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tether.runtime.bench import peer


class FakeChild:
    """Answers ``generate`` from a table of seconds per (kind of call); records the order of calls."""

    calls: list[str] = []

    def __init__(self, system: str, python: str, checkpoint: str, dtype: str, threads: int, enforce_eager=None):
        self.system, self.ready_s = system, {"tether": 2.0, "vllm": 60.0}[system]
        self.compiled = system == "tether" and enforce_eager is not True
        self.speed = {"tether": 1.0, "vllm": 2.0}[system]  # vllm twice as fast

    def generate(self, prompts, max_tokens):
        FakeChild.calls.append(self.system)
        if max_tokens == 1:
            seconds = sum(len(p) for p in prompts) / 1000 / self.speed
        else:
            seconds = sum(len(p) for p in prompts) / 1000 / self.speed + len(prompts) * (max_tokens - 1) / 10
        tokens = [[7] * max_tokens if self.system == "vllm" or i else [8] * max_tokens for i in range(len(prompts))]
        return seconds, tokens

    def close(self) -> None:
        pass


def test_rounds_alternate_and_figures_are_medians(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeChild.calls = []
    monkeypatch.setattr(peer, "Child", FakeChild)
    result = peer.run_peer(
        "/ckpt", dtype="float32", threads=1, vllm_python="v", tether_python="t", vocab_size=500,
        parity_prompts=[[1, 2], [3, 4], [5]], repeats=2, decode_batches=(1, 8), prompt_len=16, decode_tokens=5,
        prefill_len=64,
    )  # fmt: skip
    per_round = 1 + 2 * 2  # prefill, then t(n) and t(1) per batch
    assert FakeChild.calls[:per_round] == ["tether"] * per_round
    assert FakeChild.calls[per_round : 2 * per_round] == ["vllm"] * per_round
    assert FakeChild.calls[2 * per_round : 3 * per_round] == ["vllm"] * per_round  # round 2: vllm first
    assert result.tether.prefill_tps == pytest.approx(1000.0) and result.vllm.prefill_tps == pytest.approx(2000.0)
    # decode: b * (n - 1) / (t(n) - t(1)) with t(n) - t(1) = b * (n - 1) / 10: 10 tok/s whatever the batch
    assert result.tether.decode_tps == pytest.approx({1: 10.0, 8: 10.0})
    assert result.parity == (2, 3)  # the first prompt differs
    assert (result.tether.ready_s, result.vllm.ready_s) == (2.0, 60.0)
    assert result.tether_compiled  # as the Tether child reported
    table = peer.format_peer(result)
    assert table.startswith("Tether (compiled) against vLLM, float32, 1 thread(s) each")
    assert "prefill 64 tokens, tok/s        1000.0    2000.0        0.50x" in table
    assert "greedy parity: 2 of 3 prompts x 32 tokens identical" in table


@pytest.mark.slow
def test_the_child_protocol_with_tether_on_a_small_checkpoint(tmp_path: Path, monkeypatch) -> None:
    import gguf

    from tests.runtime.gguf_files import hf_model, write_gguf
    from tether.runtime.engine.models.sources import checkpoint_dir

    monkeypatch.setenv("TETHER_HOME", str(tmp_path / "home"))
    path = write_gguf(tmp_path / "m.gguf", hf_model("Llama"), gguf.GGMLQuantizationType.F32)
    child = peer.Child("tether", sys.executable, str(checkpoint_dir(str(path))), "float32", 1)
    try:
        assert child.ready_s > 0
        assert child.compiled is False  # the suite's $TETHER_ENFORCE_EAGER=1 reached the child
        seconds, tokens = child.generate([[5, 6, 7], [8, 9]], 4)
        assert seconds > 0 and [len(t) for t in tokens] == [4, 4]
        _, again = child.generate([[5, 6, 7], [8, 9]], 4)
        assert again == tokens  # greedy
    finally:
        child.close()
    assert child.proc.returncode == 0


def test_a_child_that_dies_is_a_peer_error_naming_the_system(tmp_path: Path) -> None:
    """The main environment has no vLLM: its child dies at import, and the error carries the traceback."""
    with pytest.raises(peer.PeerError, match=r"(?s)^vllm child exited with 1: .*No module named 'vllm'"):
        peer.Child("vllm", sys.executable, str(tmp_path), "float32", 1)
