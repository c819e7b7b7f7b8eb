"""``bench/pair_runs.py``: rows of separate replay runs paired seed by seed, and a seed mismatch refused."""

from __future__ import annotations

import json

import pytest

from bench import pair_runs


def run(path, seeds, rows, rate=0.1, sweep=False):
    """A replay JSON: ``rows`` maps a label to its average JCT per seed."""
    per_seed = [
        {
            "seed": s,
            "results": [
                {"label": k, "avg_jct_s": v[i], "prefill_tokens_computed": 10, "prompt_tokens": 100}
                for k, v in rows.items()
            ],
        }
        for i, s in enumerate(seeds)
    ]
    doc = {"results_at_rate": [{"rate": rate, "per_seed": per_seed}]} if sweep else {
        "settings": {"rate": rate}, "per_seed": per_seed
    }  # fmt: skip
    path.write_text(json.dumps(doc))
    return str(path)


def test_rows_of_two_runs_pair_by_seed(tmp_path, capsys):
    base = run(tmp_path / "a.json", [0, 1], {"continuum": [10.0, 20.0], "tether": [11.0, 21.0]}, sweep=True)
    extra = run(tmp_path / "b.json", [0, 1], {"tether:park=off": [12.0, 24.0]})
    assert pair_runs.main([base, extra, "--rate", "0.1", "--against", "continuum"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["continuum", "tether", "tether:park=off"]
    assert "x continuum 1.200 [1.200, 1.200]" in lines[2]  # 12/10 and 24/20
    assert "x continuum 1.075 [1.050, 1.100]" in lines[1]  # 1.1 and 1.05


def test_runs_of_other_seeds_or_rates_are_refused(tmp_path):
    base = run(tmp_path / "a.json", [0, 1], {"continuum": [10.0, 20.0]})
    other = run(tmp_path / "b.json", [0, 2], {"tether": [11.0, 21.0]})
    with pytest.raises(SystemExit, match=r"seeds \[0, 2\] differ from \[0, 1\]"):
        pair_runs.main([base, other, "--rate", "0.1", "--against", "continuum"])
    with pytest.raises(SystemExit, match="rate 0.1, not 0.2"):
        pair_runs.main([base, "--rate", "0.2", "--against", "continuum"])


def test_a_label_two_runs_hold_is_kept_apart_by_file(tmp_path, capsys):
    old = run(tmp_path / "old.json", [0, 1], {"continuum": [10.0, 20.0], "tether": [13.0, 26.0]})
    new = run(tmp_path / "new.json", [0, 1], {"tether": [11.0, 22.0]})
    assert pair_runs.main([old, new, "--rate", "0.1", "--against", "tether@new"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["continuum", "tether", "tether@new"]
    assert "x tether@new 1.182 [1.182, 1.182]" in lines[1]  # 13/11 and 26/22
