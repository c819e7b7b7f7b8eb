"""The deployment's one ``ToolDurationStats``: loaded once per process from ``$TETHER_HOME``, bounded and
versioned on disk, shared by the compiler, the tool runner and the engine."""

from __future__ import annotations

import json
import logging

import pytest

from tether.tools.durations import ToolDurationStats
from tether.tools.store import (
    FILE_NAME,
    ToolDurationStore,
    deployment_stats,
    deployment_store,
    save_deployment_stats,
)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TETHER_HOME", str(tmp_path))
    return tmp_path


def test_one_instance_per_home_saved_and_read_back(home):
    stats = deployment_stats()
    assert deployment_stats() is stats and deployment_store().path == home / FILE_NAME
    stats.observe_many([("search", 2.0), ("search", 4.0), ("bash", 0.5)])
    assert save_deployment_stats()
    data = json.loads((home / FILE_NAME).read_text())
    assert data == {
        "version": 1,
        "tools": {"bash": {"count": 1, "samples": [0.5]}, "search": {"count": 2, "samples": [2.0, 4.0]}},
    }
    again = ToolDurationStore(home / FILE_NAME).load()  # what a second process reads
    assert again.history() == stats.history() and again.count() == 3
    assert again.running_mean("search") == 3.0 and again.mean(None) == pytest.approx(6.5 / 3)
    again.check_integrity()


def test_bounds_keep_the_most_observed_tools_and_the_latest_samples(tmp_path):
    store = ToolDurationStore(tmp_path / FILE_NAME, max_tools=2, max_samples=3)
    store.stats.observe_many([("a", float(i)) for i in range(10)] + [("b", 1.0)] * 2 + [("c", 7.0)])
    snap = store.snapshot()
    assert snap["tools"] == {"a": {"count": 10, "samples": [7.0, 8.0, 9.0]}, "b": {"count": 2, "samples": [1.0, 1.0]}}
    assert store.save()
    loaded = ToolDurationStore(tmp_path / FILE_NAME, max_tools=1, max_samples=2).load()
    assert loaded.tools() == ("a",) and loaded.count("a") == 10 and loaded.model_for("a").support() == (8.0, 9.0)
    loaded.check_integrity()


@pytest.mark.parametrize(
    "text",
    ["{not json", json.dumps({"version": 2, "tools": {}}), json.dumps([1, 2]), json.dumps({"version": 1})],
)
def test_corrupt_or_unknown_file_is_ignored_with_a_warning(tmp_path, caplog, text):
    (tmp_path / FILE_NAME).write_text(text)
    with caplog.at_level(logging.WARNING, logger="tether.tools.store"):
        stats = ToolDurationStore(tmp_path / FILE_NAME).load()
    assert stats.count() == 0 and "ignoring the tool-duration file" in caplog.text


def test_a_bad_tool_entry_is_skipped_the_rest_kept(tmp_path, caplog):
    tools = {"ok": {"count": 3, "samples": [1.0, 2.0]}, "bad": {"count": 1, "samples": [-1.0]}, "x": {}}
    (tmp_path / FILE_NAME).write_text(json.dumps({"version": 1, "tools": tools}))
    with caplog.at_level(logging.WARNING, logger="tether.tools.store"):
        stats = ToolDurationStore(tmp_path / FILE_NAME).load()
    assert stats.tools() == ("ok",) and stats.count("ok") == 3 and stats.count() == 3
    assert "'bad'" in caplog.text and "'x'" in caplog.text
    stats.check_integrity()


def test_a_failed_write_is_logged_not_raised(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = ToolDurationStore(blocker / FILE_NAME)  # its folder is a file
    store.stats.observe("t", 1.0)
    with caplog.at_level(logging.WARNING, logger="tether.tools.store"):
        assert not store.save()
    assert "could not save" in caplog.text


def test_restore_checks_before_it_changes_anything():
    stats = ToolDurationStats()
    with pytest.raises(Exception, match="count"):
        stats.restore("t", [1.0, 2.0], 1)
    assert stats.count() == 0
