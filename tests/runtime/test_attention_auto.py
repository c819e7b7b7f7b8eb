"""``auto`` attention backend: Triton only on a CUDA device where its self-check passed, cached per device."""

from __future__ import annotations

import json
import logging

import torch

from tether.runtime.engine.attention import resolve_backend_name
from tether.runtime.engine.attention import self_check as sc

CUDA = torch.device("cuda")


def test_auto_is_torch_on_cpu_without_running_the_check():
    def never(device):
        raise AssertionError("no self-check on CPU")

    assert resolve_backend_name("auto", torch.device("cpu"), self_check=never) == "torch"


def test_auto_follows_the_self_check_on_cuda(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object())
    assert resolve_backend_name("auto", CUDA, self_check=lambda d: True) == "triton"
    assert resolve_backend_name("auto", CUDA, self_check=lambda d: False) == "torch"
    assert resolve_backend_name("triton", CUDA, self_check=lambda d: False) == "triton"  # explicit wins


def test_the_check_runs_once_per_device_key_and_a_failure_warns(tmp_path, monkeypatch, caplog):
    keys = iter(["GPU-A|torch 1|triton 1", "GPU-A|torch 1|triton 1", "GPU-B|torch 1|triton 1"])
    monkeypatch.setattr(sc, "device_key", lambda device: next(keys))
    calls = []

    def fake_check(device):
        calls.append(device)
        return sc.CheckResult("float16 fake", passed=len(calls) == 1, max_abs_error=0.0, tolerance=0.02)

    path = tmp_path / "home" / "attention_self_check.json"
    assert sc.triton_self_check_passed(CUDA, check=fake_check, path=path)
    assert sc.triton_self_check_passed(CUDA, check=fake_check, path=path)  # cached: no second run
    with caplog.at_level(logging.WARNING):
        assert not sc.triton_self_check_passed(CUDA, check=fake_check, path=path)
    assert len(calls) == 2
    assert "Triton self-check failed" in caplog.text
    assert set(json.loads(path.read_text())) == {"GPU-A|torch 1|triton 1", "GPU-B|torch 1|triton 1"}


def test_cache_lives_under_tether_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TETHER_HOME", str(tmp_path))
    assert sc.cache_path() == tmp_path / "attention_self_check.json"
