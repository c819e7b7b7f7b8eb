"""``tether run``: the JSON result, the trace, errors on stderr with a non-zero exit, nothing run for an
invalid workflow, the example on the tiny model, and tools on remote workers with ``--broker``."""

from __future__ import annotations

import asyncio
import json
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.cli import main
from tether.runtime.tracing import read_trace
from tether.tools import ToolRegistry

REPO = Path(__file__).resolve().parents[2]

TOOLS = textwrap.dedent(
    '''
    from pathlib import Path

    from tether.tools import tool

    @tool
    def mark(path: str, text: str) -> int:
        """Append a line to a file; return the file's line count."""
        with open(path, "a") as f:
            f.write(text + "\\n")
        return len(Path(path).read_text().splitlines())

    @tool
    def fail(reason: str) -> str:
        raise ValueError(reason)
    '''
)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "cli_tools.py").write_text(TOOLS)
    return tmp_path


def write(workdir: Path, text: str) -> Path:
    path = workdir / "wf.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["run", *argv])
    out, err = capsys.readouterr()
    return code, out, err


MARKS = """\
    name: marks
    inputs:
      log: string
      times: {type: integer, default: 2}
    tools: [cli_tools.py]
    nodes:
      - {id: one, tool: mark, args: {path: "${inputs.log}", text: "one of ${inputs.times}"}}
      - {id: two, tool: mark, args: {path: "${inputs.log}", text: "two after ${one.output}"}}
    outputs: {lines: "${two.output}", first: "${one.output}"}
    """


def test_json_output_and_trace(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wf = write(workdir, MARKS)
    log = workdir / "log.txt"
    code, out, err = run_cli(
        capsys, str(wf), "--input", f"log={log}", "--input", "times=3", "--json", "--quiet",
        "--trace-dir", str(workdir / "traces"), "--run-id", "r1",
    )  # fmt: skip
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc == {
        "run_id": "r1",
        "outputs": {"lines": 2, "first": 1},
        "trace": str(workdir / "traces" / "r1" / "events.jsonl"),
    }
    assert log.read_text() == "one of 3\ntwo after 1\n"
    kinds = [e.kind for e in read_trace(doc["trace"])]
    assert kinds == ["program_start"] + ["node_start", "tool_call", "node_end"] * 2 + ["program_end"]


def test_text_output(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wf = write(workdir, MARKS)
    code, out, err = run_cli(capsys, str(wf), "--input", f"log={workdir / 'l'}", "--trace-dir", str(workdir))
    assert code == 0 and out == "lines: 2\nfirst: 1\n"
    bar, trace = err.replace("\r", "\n").strip().splitlines()[-2:]  # the bar's last state, then the trace
    assert bar.startswith("marks: 100%") and " 2/2 [" in bar and "node/s" in bar, err
    assert trace.startswith("trace: ")
    quiet = run_cli(capsys, str(wf), "--input", f"log={workdir / 'q'}", "--trace-dir", str(workdir), "--quiet")
    assert quiet[2].startswith("trace: ")  # --quiet: no bar


def test_a_failing_workflow_exits_non_zero_with_the_error(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wf = write(
        workdir,
        """\
        name: failing
        tools: [cli_tools.py]
        nodes:
          - {id: boom, tool: fail, args: {reason: disk full}}
        """,
    )
    args = ("--json", "--quiet", "--trace-dir", str(workdir), "--run-id", "f1")
    code, out, err = run_cli(capsys, str(wf), *args)
    assert code == 1 and out == ""
    assert err == (
        "tether run: program 'f1': node 'boom' failed: ToolExecutionError: tool 'fail' failed: "
        "ValueError: disk full\n"
    )
    assert [e.kind for e in read_trace(workdir / "f1" / "events.jsonl")][-2:] == ["node_error", "program_end"]
    assert json.loads((workdir / "f1" / "run.json").read_text())["status"] == "failed"


def test_a_cycle_fails_before_anything_runs(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = workdir / "log.txt"
    wf = write(
        workdir,
        f"""\
        name: cyclic
        tools: [cli_tools.py]
        nodes:
          - {{id: first, tool: mark, args: {{path: "{log}", text: ran}}}}
          - {{id: a, tool: mark, args: {{path: "{log}", text: "${{b.output}}"}}}}
          - {{id: b, tool: mark, args: {{path: "{log}", text: "${{a.output}}"}}}}
        """,
    )
    code, out, err = run_cli(capsys, str(wf), "--trace-dir", str(workdir))
    assert (code, out) == (2, "")
    assert err == f"tether run: {wf}:5: dependency cycle: a -> b -> a\n"
    assert not log.exists() and list(workdir.glob("*/run.json")) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "times=many"], "input 'times': cannot read 'many' as integer"),
        (["--input", "log"], "input 'log': expected key=value"),
        ([], "input 'log': missing required input of type string"),
        (["--input", "log=x", "--input", "colour=red"], "input 'colour': the program has no such input"),
    ],
)
def test_input_errors(
    workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = run_cli(capsys, str(write(workdir, MARKS)), *args)
    assert code == 2 and err.startswith(f"tether run: {message}")


def test_the_example_runs_on_the_tiny_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys, str(REPO / "examples" / "research.yaml"), "--model", "tiny", "--num-kv-blocks", "64",
        "--input", "topic=prefix sharing in attention", "--json", "--trace-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"run_id", "outputs", "trace"}
    outputs = doc["outputs"]
    assert [s["doc_id"] for s in outputs["sources"]] == ["hydragen", "pagedattention"]
    assert outputs["first_title"] == "Hydragen"
    assert isinstance(outputs["summary"], str)
    assert outputs["summary_words"] == len(outputs["summary"].split())
    events = read_trace(doc["trace"])
    (turn,) = [e for e in events if e.kind == "llm_turn"]
    assert turn.node_id == "summarize" and turn.attrs["gen_ai.operation.name"] == "chat"
    assert {e.program_id for e in events} == {doc["run_id"], "_engine"}  # the engine's counters: _engine
    # the engine's events of the same request, on the same clock, inside the executor's span of the call
    rid = turn.attrs["request_id"]
    engine = {e.kind: e for e in events if e.attrs.get("request_id") == rid and e.kind != "llm_turn"}
    assert {"llm_queued", "llm_admitted", "llm_prefill", "llm_first_token", "llm_finished"} <= set(engine)
    finished = engine["llm_finished"].attrs
    assert finished["input_tokens"] == turn.attrs["gen_ai.usage.input_tokens"]
    assert finished["output_tokens"] == turn.attrs["gen_ai.usage.output_tokens"]
    assert turn.start <= engine["llm_queued"].ts <= engine["llm_finished"].ts <= turn.ts
    assert any(e.kind == "engine_step" for e in events)
    meta = json.loads((Path(doc["trace"]).parent / "run.json").read_text())
    assert (meta["kind"], meta["status"], meta["traces"]) == ("run", "ok", {"main": "events.jsonl"})


class BackgroundWorker:
    """The embedded broker and a ``ToolWorker`` on their own event loop in a thread."""

    def __init__(self, tools_file: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.registry = ToolRegistry()
        self.registry.load(str(tools_file))
        self.broker, self.worker = self.call(self._start())

    async def _start(self) -> tuple:
        from tether.tools.mqtt import EmbeddedBroker, ToolWorker

        broker = EmbeddedBroker()
        await broker.start()
        worker = ToolWorker(broker.url, self.registry)
        await worker.start()
        return broker, worker

    def call(self, coro):  # noqa: ANN001, ANN201
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def stop(self) -> None:
        self.call(self.worker.stop())
        self.call(self.broker.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture
def remote(workdir: Path) -> Iterator[BackgroundWorker]:
    bg = BackgroundWorker(workdir / "cli_tools.py")
    yield bg
    bg.stop()


def test_tools_run_on_remote_workers_with_broker(
    workdir: Path, remote: BackgroundWorker, capsys: pytest.CaptureFixture[str]
) -> None:
    wf = write(workdir, MARKS)
    log = workdir / "remote.txt"
    code, out, err = run_cli(
        capsys, str(wf), "--input", f"log={log}", "--json", "--broker", remote.broker.url,
        "--trace-dir", str(workdir),
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["outputs"] == {"lines": 2, "first": 1}
    assert log.read_text() == "one of 2\ntwo after 1\n"
    assert remote.worker.stats.ran == 2


@pytest.mark.parametrize(
    ("flags", "blamed"),
    [
        (["--model", "no-such-model"], "--model: model 'no-such-model'"),
        (["--policy", "nosuch"], "--policy: unknown"),
    ],
)
def test_an_unknown_model_or_policy_is_an_input_error_naming_its_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], blamed: str
) -> None:
    workflow = str(REPO / "examples" / "research.yaml")
    code, out, err = run_cli(capsys, workflow, "--input", "topic=x", *flags, "--trace-dir", str(tmp_path))
    assert (code, out) == (2, "") and err.startswith(f"tether run: {blamed}")
    assert list(tmp_path.iterdir()) == []  # no run recorded


def test_serve_names_an_unknown_policy_before_anything_starts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--model", "tiny", "--policy", "nosuch"]) == 2
    assert capsys.readouterr().err.startswith("tether serve: --policy: unknown policy 'nosuch'")
