"""``tether bench serve --against vllm`` (tether/runtime/bench/serve_peer.py): rounds, order, medians and commands with
the servers and the replay client faked (one layer), and the CLI's refusals."""

from __future__ import annotations

import contextlib
import os

import pytest

from tether.cli import main as cli_main
from tether.runtime.bench import serve_peer

SETTINGS = serve_peer.ServePeerSettings(
    model="smollm2",
    checkpoint="/models/smollm2",
    policies=("tether", "vllm"),
    vllm_python="/peer/bin/python",
    dtype="bfloat16",
    threads=2,
    repeats=3,
    rate=0.5,
    concurrency=None,
    seed=4,
)
JCT = {"vllm": [10.0, 30.0, 20.0], "tether:tether": [6.0, 8.0, 7.0], "tether:vllm": [9.0, 9.0, 12.0]}


def test_rounds_alternate_and_figures_are_medians(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []

    @contextlib.contextmanager
    def fake_server(settings, system):
        started.append(system)
        yield f"http://{system}/v1"

    async def fake_replay(url, programs, arrivals, *, label, seed, on_progress):
        assert url == f"http://{label}/v1" and seed == 4 and arrivals.times is not None
        run = started.count(label) - 1
        return {"avg_jct_s": JCT[label][run], "p90_jct_s": 2 * JCT[label][run], "prompt_tokens": 100,
                "cache_hit_tokens": 50 + run}  # fmt: skip

    monkeypatch.setattr(serve_peer, "server", fake_server)
    monkeypatch.setattr(serve_peer, "replay_endpoint", fake_replay)
    doc = serve_peer.run_serve_peer(SETTINGS, programs=[object(), object()])
    systems = ["vllm", "tether:tether", "tether:vllm"]
    assert started == systems + systems[::-1] + systems  # each round flips the order
    summary = doc["summary"]
    assert summary["vllm"]["avg_jct_s"] == 20.0 and summary["vllm"]["p90_jct_s"] == 40.0
    assert summary["tether:tether"]["avg_jct_over_vllm"] == 7.0 / 20.0
    assert summary["tether:vllm"]["avg_jct_over_vllm"] == 9.0 / 20.0
    assert summary["tether:tether"]["cached_prompt_fraction"] == 0.51
    assert len(summary["vllm"]["load_average_1m"]) == 3 and len(doc["runs"]) == 9
    table = serve_peer.format_serve_peer(doc)
    assert "tether:tether" in table and "0.350" in table and "medians of 3 alternating runs" in table


def test_both_servers_get_the_same_model_dtype_threads_and_kv_memory() -> None:
    vllm = SETTINGS.vllm_command(8001)
    assert vllm[:3] == ["/peer/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    flags = dict(zip(vllm[3::2], vllm[4::2]))
    assert flags["--model"] == "/models/smollm2" and flags["--served-model-name"] == "smollm2"
    assert flags["--dtype"] == "bfloat16" and flags["--port"] == "8001" and "--block-size" not in flags
    env = SETTINGS.vllm_env()
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "0-1" and env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    tether = SETTINGS.tether_command(8002, "tether")
    flags = dict(zip(tether[4::2], tether[5::2]))
    assert tether[3] == "serve" and flags["--policy"] == "tether" and flags["--model"] == "smollm2"
    assert flags["--dtype"] == "bfloat16" and flags["--threads"] == "2" and "--num-kv-blocks" not in flags


def test_cli_refuses_what_it_cannot_compare(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    workload = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "workloads")
    traces = (
        sorted(f for f in os.listdir(workload) if f.endswith(".jsonl")) if os.path.isdir(workload) else []
    )
    if not traces:
        pytest.skip("no shared workloads beside the checkout")
    base = ["bench", "serve", "--workload", os.path.join(workload, traces[0]), "--programs", "1", "--rate", "1",
            "--against", "vllm"]  # fmt: skip
    assert cli_main([*base, "--model", "tiny"]) == 2
    assert "preset vLLM cannot load" in capsys.readouterr().err
    assert cli_main([*base, "--model", "smollm2", "--vllm-python", str(tmp_path / "none")]) == 2
    assert "make vllm-peer" in capsys.readouterr().err
    python = tmp_path / "python"
    python.write_text("")
    assert cli_main([*base, "--model", "smollm2", "--vllm-python", str(python), "--num-kv-blocks", "64"]) == 2
    assert "1 GiB of KV memory" in capsys.readouterr().err
