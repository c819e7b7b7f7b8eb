"""``tether replay --endpoint`` against a real ``tether serve``: the same programs over HTTP, prefixes reused
across each program's turns, every program ended, nothing leaked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.replay.test_replay import program
from tests.server.serve import API_KEY, integrity, metric
from tether.cli import main
from tether.runtime.replay.workload import load_workload

pytestmark = pytest.mark.slow  # `tether replay --endpoint` against a `tether serve` process

PROGRAMS = [
    program("tb/a", [(0, 6, "bash:ls", 0.05), (9, 5, "bash:cat", 0.02), (4, 3, None, None)], first_prompt=60),
    program("tb/b", [(0, 4, "bash:grep", 0.03), (21, 2, None, None)], first_prompt=90),
    program("tb/c", [(0, 2, None, None)], first_prompt=33),
]


def write_workload(path: Path) -> Path:
    lines = []
    for p in PROGRAMS:
        turns = [
            {
                "prompt_tokens": t.prompt_tokens,
                "new_input_tokens": t.new_input_tokens,
                "output_tokens": t.output_tokens,
                "tool": t.tool,
                "tool_seconds": t.tool_seconds,
            }
            for t in p.turns
        ]
        lines.append(json.dumps({"program_id": p.program_id, "turns": turns}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_replay_over_http_reuses_prefixes_and_ends_every_program(tiny_server: str, tmp_path: Path) -> None:
    workload = write_workload(tmp_path / "w.jsonl")
    assert [p.turns for p in load_workload(workload)] == [p.turns for p in PROGRAMS]
    out = tmp_path / "http.json"
    rc = main(
        [
            "replay", "--workload", str(workload), "--endpoint", tiny_server, "--api-key", API_KEY,
            "--concurrency", "3", "--json", str(out), "--quiet",
        ]
    )  # fmt: skip
    assert rc == 0
    (row,) = json.loads(out.read_text())["results"]
    assert row["programs"] == 3 and row["turns"] == 6
    assert row["served_model"] == "tiny"
    assert row["turns_without_token_ids"] == 0 and row["program_ends_unsupported"] == 0
    assert row["prompt_tokens"] == sum(t.prompt_tokens for p in PROGRAMS for t in p.turns)
    # each later turn extends its program's previous prompt + output, whose KV is computed but for the last
    # sampled token: at least those full blocks come from the cache
    reused = sum((t.prompt_tokens - t.new_input_tokens - 1) // 16 * 16 for p in PROGRAMS for t in p.turns[1:])
    assert row["cache_hit_tokens"] >= reused > 0
    assert metric(tiny_server, "tether_kv_blocks", 'state="pinned"') == 0  # every program was ended
    integrity(tiny_server)
