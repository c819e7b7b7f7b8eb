"""``tether serve`` and ``tether ui`` refuse bad flags and a taken port before anything starts (no Ray cluster, no
engine, no run recorded)."""

from __future__ import annotations

import socket

import pytest

from tether.cli import main


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--ray-address", "auto"], "--ray-address needs --replicas N"),
        (["--replicas", "0"], "--replicas: must be >= 1, got 0"),
        (
            ["--replicas", "2", "--router", "nearest"],
            "--router: unknown router 'nearest'; known: program, pow2, prefix, session",
        ),
        (["--max-tokens-default", "-1"], "--max-tokens-default: must be >= 0, got -1"),
        (["--program-idle-timeout", "0"], "--program-idle-timeout: must be > 0, got 0.0"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(flags, message, capsys) -> None:
    assert main(["serve", "--model", "tiny", *flags]) == 2
    assert message in capsys.readouterr().err


def test_the_help_states_the_servers_output_cap(capsys) -> None:
    from tether.runtime.server.serving import DEFAULT_MAX_TOKENS

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert f"default: {DEFAULT_MAX_TOKENS}, ServerConfig's" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("command", ["serve", "ui"])
def test_a_taken_port_fails_first_in_one_line_leaving_no_run(command, tmp_path, capsys) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        args = [command, "--port", str(port), "--trace-dir", str(tmp_path)]
        assert main(args + (["--model", "tiny"] if command == "serve" else [])) == 1
    finally:
        taken.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"tether {command}: cannot listen on 127.0.0.1:{port}: Address already in use"]
    assert list(tmp_path.iterdir()) == []  # no engine was loaded, no run recorded


def test_serve_help_states_every_default(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for stated in (
        "port to listen on (default: 8000)",
        "(default: 600.0)",
        "(default: 30.0)",
        "(default: 256)",
    ):
        assert stated in text
