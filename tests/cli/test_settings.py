"""One configuration model (``tether.runtime.settings``): the CLI's flags are generated from it, ``$TETHER_*`` and
``--config FILE`` are read through it (flag > environment > file > default), and ``EngineConfig`` /
``ServerConfig`` take its defaults."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pytest

from tether.cli import build_parser, main
from tether.cli.common import engine_kwargs
from tether.cli.settings_args import resolve_settings, settings_of
from tether.runtime.engine.config import EngineConfig
from tether.runtime.server.serving import ServerConfig
from tether.runtime.settings import GROUPS, EngineSettings, ServerSettings, SettingsError

ENGINE_COMMANDS = (
    "generate",
    "chat",
    "run",
    "serve",
    "bench engine",
    "bench agents",
    "bench serve",
    "calibrate",
)
# the flags every engine command had before they were generated, and serve's: each must keep working
ENGINE_FLAGS = (
    "--model --device --dtype --threads --enforce-eager --compile --block-size --num-kv-blocks --num-cpu-kv-blocks "
    "--max-num-batched-tokens --max-num-seqs --max-model-len --no-prefix-caching --seed --policy --max-num-waiting"
).split()
SERVER_FLAGS = (
    "--host --port --api-key --served-model-name --program-idle-timeout --max-tokens-default --shutdown-timeout "
    "--log-level --trace-dir --replicas --router --ray-address --replica-cpus"
).split()
INTERNAL = {"turns_prior_exclude"}  # EngineConfig fields no user sets: tether replay fills it in


@pytest.fixture(autouse=True)
def _no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite sets $TETHER_ENFORCE_EAGER=1 (conftest.py); these tests set the variables they mean."""
    for group in GROUPS:
        for name in group.model_fields:
            monkeypatch.delenv(group.env_name(name), raising=False)


def subparser(*path: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: action for action in parser._actions for flag in action.option_strings}


def resolved(argv: list[str]) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    resolve_settings(args)
    return args


@pytest.mark.parametrize("command", ENGINE_COMMANDS)
def test_every_engine_command_has_every_setting_as_a_flag_with_the_models_default(command: str) -> None:
    flags = options(subparser(*command.split()))
    assert set(ENGINE_FLAGS) | {"--config"} <= set(flags)
    for name, field in EngineSettings.model_fields.items():
        action = flags[EngineSettings.flag(name)]
        assert action.dest == name
        if (command, name) != ("bench agents", "model"):  # bench agents loads smollm2 by default
            assert action.default == field.default, name
    assert flags["--max-num-seqs"].type is int and flags["--threads"].type is int
    assert flags["--attention-backend"].choices == ("auto", "torch", "triton")


def test_serve_has_every_server_setting_as_a_flag_with_the_models_default() -> None:
    flags = options(subparser("serve"))
    assert set(SERVER_FLAGS) <= set(flags)
    for name, field in ServerSettings.model_fields.items():
        assert (flags[ServerSettings.flag(name)].dest, flags[ServerSettings.flag(name)].default) == (
            name,
            field.default,
        )
    assert flags["--port"].default == 8000 and flags["--program-idle-timeout"].default == 600.0


@pytest.mark.parametrize(
    ("flags", "eager", "prefix_caching"),
    [
        ([], None, True),
        (["--enforce-eager"], True, True),
        (["--compile", "--no-prefix-caching"], False, False),
    ],
)
def test_the_switches_keep_their_meaning(flags, eager, prefix_caching) -> None:
    kwargs = engine_kwargs(resolved(["generate", "--prompt", "x", *flags]))
    assert (kwargs["enforce_eager"], kwargs["enable_prefix_caching"]) == (eager, prefix_caching)


def test_enforce_eager_and_compile_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["generate", "--prompt", "x", "--enforce-eager", "--compile"])
    assert exit_.value.code == 2
    assert "argument --compile: not allowed with argument --enforce-eager" in capsys.readouterr().err


def test_the_policy_default_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert options(subparser("serve"))["--policy"].default == EngineConfig().policy == "tether"
    assert engine_kwargs(resolved(["generate", "--prompt", "x"]))["policy"] == "tether"


def test_every_engine_config_default_is_the_settings_default() -> None:
    to_setting = {v: k for k, v in EngineSettings.CONFIG_NAMES.items()}
    config_fields = {f.name: f for f in dataclasses.fields(EngineConfig)}
    for name, field in config_fields.items():
        if name in INTERNAL:
            continue
        setting = to_setting.get(name, name)
        assert EngineSettings.model_fields[setting].default == field.default, name
    # and no setting is left out of the config
    assert {EngineSettings.CONFIG_NAMES.get(n, n) for n in EngineSettings.model_fields} == set(
        config_fields
    ) - INTERNAL


def test_every_server_config_default_is_the_settings_default() -> None:
    to_setting = {v: k for k, v in ServerSettings.CONFIG_NAMES.items()}
    with_defaults = [f for f in dataclasses.fields(ServerConfig) if f.default is not dataclasses.MISSING]
    assert [f.name for f in with_defaults] == [
        "api_key",
        "program_idle_s",
        "retry_after_s",
        "max_tokens_default",
    ]
    for field in with_defaults:
        assert ServerSettings.model_fields[to_setting.get(field.name, field.name)].default == field.default
    assert ServerSettings().server_config("m") == ServerConfig(("m",))


def test_each_setting_reaches_its_config_field() -> None:
    engine = EngineSettings(
        model="smollm2", device="cuda", dtype="bfloat16", threads=3, enforce_eager=False, block_size=32,
        num_kv_blocks=100, num_cpu_kv_blocks=7, max_num_batched_tokens=99, max_num_seqs=5, max_model_len=512,
        prefix_caching=False, gpu_memory_utilization=0.5, cpu_kv_cache_gib=2.0, attention_backend="torch",
        seed=4, policy="vllm", cost_model="tiny-cpu", max_num_waiting=9,
    )  # fmt: skip
    assert engine.engine_config(turns_prior_exclude="t") == EngineConfig(
        model="smollm2", device="cuda", dtype="bfloat16", num_threads=3, enforce_eager=False, block_size=32,
        num_kv_blocks=100, num_cpu_kv_blocks=7, max_num_batched_tokens=99, max_num_seqs=5, max_model_len=512,
        enable_prefix_caching=False, gpu_memory_utilization=0.5, cpu_kv_cache_gib=2.0, attention_backend="torch",
        seed=4, policy="vllm", cost_model="tiny-cpu", max_num_waiting=9, turns_prior_exclude="t",
    )  # fmt: skip
    server = ServerSettings(
        served_model_name=("a", "b"), api_key="k", program_idle_timeout=5, retry_after=3, max_tokens_default=0
    )
    assert server.server_config("m") == ServerConfig(
        ("a", "b"), api_key="k", program_idle_s=5.0, retry_after_s=3, max_tokens_default=None
    )


def test_environment_variables_reach_the_engine_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_POLICY", "vllm")
    monkeypatch.setenv("TETHER_MAX_NUM_SEQS", "8")
    monkeypatch.setenv("TETHER_NO_SUCH_SETTING", "1")  # not a setting: ignored, as TETHER_HOME is
    args = resolved(["serve"])
    config = settings_of(args, EngineSettings).engine_config()
    assert (config.policy, config.max_num_seqs, args.policy) == ("vllm", 8, "vllm")
    assert EngineSettings().engine_config().policy == "vllm"  # the library reads them too (pydantic-settings)
    monkeypatch.setenv("TETHER_ENFORCE_EAGER", "1")
    monkeypatch.setenv("TETHER_SERVED_MODEL_NAME", "a, b")
    monkeypatch.setenv("TETHER_API_KEY", "secret")
    args = resolved(["serve"])
    assert engine_kwargs(args)["enforce_eager"] is True
    assert settings_of(args, ServerSettings).server_config("m").served_model_names == ("a", "b")
    assert settings_of(args, ServerSettings).server_config("m").api_key == "secret"


CONFIGS = {
    "yaml": "policy: vllm\nmax-num-seqs: 4\nport: 9001\nserved_model_name: [a, b]\n",
    "toml": 'policy = "vllm"\nmax-num-seqs = 4\nport = 9001\nserved_model_name = ["a", "b"]\n',
    "json": json.dumps({"policy": "vllm", "max-num-seqs": 4, "port": 9001, "served_model_name": ["a", "b"]}),
}


@pytest.mark.parametrize("suffix", sorted(CONFIGS))
def test_a_config_file_reaches_the_configs(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"tether.{suffix}"
    path.write_text(CONFIGS[suffix])
    args = resolved(["serve", "--config", str(path)])
    config = settings_of(args, EngineSettings).engine_config()
    assert (config.policy, config.max_num_seqs, args.port) == ("vllm", 4, 9001)
    assert settings_of(args, ServerSettings).server_config("tiny").served_model_names == ("a", "b")
    # serve's keys do not bother generate
    args = resolved(["generate", "--prompt", "x", "--config", str(path)])
    assert engine_kwargs(args)["max_num_seqs"] == 4


def test_a_flag_beats_the_environment_which_beats_the_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "tether.yaml"
    path.write_text("policy: continuum\nmax_num_seqs: 4\nblock_size: 32\nmodel: tiny\n")
    monkeypatch.setenv("TETHER_POLICY", "vllm")
    monkeypatch.setenv("TETHER_MAX_NUM_SEQS", "8")
    args = resolved(["serve", "--config", str(path), "--policy", "autellix", "--block-size", "16"])
    kwargs = engine_kwargs(args)
    assert (kwargs["policy"], kwargs["max_num_seqs"], kwargs["block_size"], kwargs["seed"]) == (
        "autellix",  # the flag
        8,  # the environment over the file
        16,  # the flag over the file, though it names the default
        0,  # the default
    )
    args = resolved(["serve", "--config", str(path)])
    assert (args.policy, args.max_num_seqs, args.block_size) == ("vllm", 8, 32)
    # a subcommand's own default (bench agents loads smollm2) sits under the file and the environment
    assert resolved(["bench", "agents"]).model == "smollm2"
    assert resolved(["bench", "agents", "--config", str(path)]).model == "tiny"
    monkeypatch.setenv("TETHER_MODEL", "x.gguf")
    assert resolved(["bench", "agents", "--config", str(path)]).model == "x.gguf"


@pytest.mark.parametrize(
    ("env", "config", "line"),
    [
        (
            {"TETHER_BLOCK_SIZE": "12"},
            None,
            "tether serve: $TETHER_BLOCK_SIZE: must be a power of two, got 12",
        ),
        (
            {"TETHER_MAX_NUM_SEQS": "many"},
            None,
            "tether serve: $TETHER_MAX_NUM_SEQS: input should be a valid integer, unable to parse string as an "
            "integer, got 'many'",
        ),
        ({}, "max_num_seqs: 0\n", "tether serve: {path}: max_num_seqs: must be >= 1, got 0"),
        (
            {},
            "port: 80x\n",
            "tether serve: {path}: port: input should be a valid integer, unable to parse string as an integer, got "
            "'80x'",
        ),
        (
            {},
            "max_num_seq: 3\n",
            "tether serve: {path}: max_num_seq: unknown setting (did you mean max_num_seqs?)",
        ),
        ({}, "- policy\n", "tether serve: {path}: a config file is a mapping of settings, not a list"),
        (
            {"TETHER_POLICY": "fifo"},
            "policy: vllm\n",
            "tether serve: $TETHER_POLICY: unknown policy 'fifo'; known: vllm, lmcache, infercept, autellix, "
            "continuum, continuum-fixed, tether, tether:<options>, continuum|continuum-fixed|autellix|infercept:"
            "tier=on|off",
        ),
    ],
)
def test_a_bad_value_from_the_environment_or_a_file_is_one_line_naming_it_and_exits_2(
    tmp_path: Path, monkeypatch, capsys, env, config, line
) -> None:
    path = tmp_path / "tether.yaml"
    argv = ["serve", "--trace-dir", str(tmp_path / "runs")]
    if config is not None:
        path.write_text(config)
        argv += ["--config", str(path)]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines() == [line.format(path=path)]
    assert not (tmp_path / "runs").exists()  # nothing started


def test_the_error_is_typed_naming_the_setting_and_its_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_GPU_MEMORY_UTILIZATION", "1.5")
    with pytest.raises(SettingsError) as err:
        EngineSettings.load()
    assert (err.value.setting, err.value.source, err.value.reason) == (
        "gpu_memory_utilization",
        "$TETHER_GPU_MEMORY_UTILIZATION",
        "must be <= 1, got 1.5",
    )
    assert isinstance(err.value, ValueError)


def test_a_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.toml"
    assert main(["generate", "--prompt", "x", "--config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err == f"tether generate: {missing}: cannot read the config file: No such file or directory\n"


def test_the_settings_page_lists_every_setting() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "settings.md").read_text()
    for group in GROUPS:
        for name in group.model_fields:
            assert f"`{group.flag(name)}`" in page and f"`{group.env_name(name)}`" in page, name
