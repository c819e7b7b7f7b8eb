"""``tether serve``'s cluster flags refuse bad values before anything starts (no Ray cluster, no engine)."""

from __future__ import annotations

import pytest

from tether.cli import main


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--ray-address", "auto"], "--ray-address needs --replicas N"),
        (["--replicas", "0"], "--replicas must be >= 1, got 0"),
        (
            ["--replicas", "2", "--router", "nearest"],
            "unknown router 'nearest'; known: program, pow2, prefix, session",
        ),
    ],
)
def test_bad_cluster_flags_exit_2_naming_the_flag(flags, message, capsys) -> None:
    assert main(["serve", "--model", "tiny", *flags]) == 2
    assert message in capsys.readouterr().err


def test_the_help_states_the_servers_output_cap(capsys) -> None:
    from tether.runtime.server.serving import DEFAULT_MAX_TOKENS

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert f"default: {DEFAULT_MAX_TOKENS}, ServerConfig's" in " ".join(capsys.readouterr().out.split())
