"""The engine's thread rule (tether/runtime/engine/threads.py): the default from the usable CPUs, ``--threads``, and
the oversubscription warning."""

from __future__ import annotations

import argparse
import os

import pytest
import torch

from tether.cli.common import add_engine_args, engine_kwargs
from tether.runtime.engine.config import EngineConfig
from tether.runtime.engine.threads import ThreadSetting, oversubscription, resolve_threads, usable_cpus


@pytest.mark.parametrize(("cpus", "threads"), [(1, 1), (2, 1), (4, 3), (16, 15)])
def test_default_leaves_one_cpu(cpus: int, threads: int) -> None:
    assert resolve_threads(None, cpus) == ThreadSetting(threads, cpus, f"default: {cpus} usable CPUs less one")


def test_requested_threads_win_and_zero_is_refused() -> None:
    assert resolve_threads(2, 2) == ThreadSetting(2, 2, "--threads")
    with pytest.raises(ValueError, match="--threads must be >= 1, got 0"):
        resolve_threads(0, 2)
    with pytest.raises(ValueError, match="num_threads must be >= 1, got 0"):
        EngineConfig(num_threads=0)


def test_usable_cpus_is_the_affinity_mask() -> None:
    assert usable_cpus() == len(os.sched_getaffinity(0))


def test_oversubscription_is_named_only_past_the_cpus() -> None:
    assert oversubscription(ThreadSetting(1, 2, "x"), load=1.4) is None
    assert oversubscription(ThreadSetting(2, 2, "x"), load=0.5) is None
    message = oversubscription(ThreadSetting(2, 2, "x"), load=2.0)
    assert message is not None and message.startswith(
        "2 engine thread(s) on 2 usable CPU(s) with a load average of 2.0: the machine is oversubscribed"
    )


def test_cli_flag_reaches_the_engine_config() -> None:
    parser = argparse.ArgumentParser()
    add_engine_args(parser)
    assert engine_kwargs(parser.parse_args(["--threads", "3"]))["num_threads"] == 3
    assert engine_kwargs(parser.parse_args([]))["num_threads"] == resolve_threads(None).threads
    assert engine_kwargs(parser.parse_args(["--device", "cuda"]))["num_threads"] is None


def test_an_engine_with_num_threads_sets_torchs_threads() -> None:
    from tether.runtime.engine.builder import build_engine

    before = torch.get_num_threads()
    try:
        engine = build_engine(EngineConfig(model="tiny", num_kv_blocks=8, num_threads=1))
        assert torch.get_num_threads() == 1
        engine.check_integrity()
    finally:
        torch.set_num_threads(before)


def test_apply_threads_warns_once_when_oversubscribed(monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    from tether.runtime.engine import threads

    monkeypatch.setattr(threads, "_warned", False)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (usable_cpus() + 1.0, 0.0, 0.0))
    before = torch.get_num_threads()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            threads.apply_threads(1)
            threads.apply_threads(1)
        assert [str(w.message).split(":")[0] for w in caught] == [
            f"1 engine thread(s) on {usable_cpus()} usable CPU(s) with a load average of {usable_cpus() + 1.0:.1f}"
        ]
    finally:
        torch.set_num_threads(before)
