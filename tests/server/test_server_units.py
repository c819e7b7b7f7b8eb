"""The server's torch-free pieces with exact expectations: the streamed-content splitter, field paths of
validation errors, program identity and turn outcomes."""

from __future__ import annotations

import math

import pytest

from tether.runtime.engine.chat import Tool
from tether.runtime.engine.sampling_params import SamplingParams
from tether.runtime.engine.sequence import ProgramHints, Sequence, TurnOutcome
from tether.runtime.server.errors import APIError
from tether.runtime.server.outcome import ToolTime, TurnOutcomes
from tether.runtime.server.protocol import ChatCompletionRequest, CompletionRequest, field_path, parse_body
from tether.runtime.server.sessions import ProgramTracker
from tether.runtime.server.streaming import ContentSplitter


def test_splitter_holds_back_a_possible_tag_and_everything_after_a_call() -> None:
    s = ContentSplitter()
    assert s.push("Hello <to") == "Hello "
    assert s.push("day>") == "<today>"
    assert s.push(" ok <tool_") == " ok "
    assert s.push('call>\n{"name"') == ""
    assert s.push("}</tool_call> bye") == ""
    assert s.in_call and s.sent == len("Hello <today> ok ")


def test_splitter_without_a_call_sends_everything_but_a_trailing_tag_start() -> None:
    s = ContentSplitter()
    assert s.push("a<") == "a"
    assert s.push("b") == "<b"
    assert s.push("<tool_cal") == ""
    assert s.sent == 3 and not s.in_call


def test_field_path_and_parse_errors_name_the_field() -> None:
    assert field_path(("messages", 2, "content")) == "messages[2].content"
    assert field_path(("prompt", "list[int]", 3)) == "prompt[3]"
    with pytest.raises(APIError) as err:
        parse_body(b'{"model": "m", "messages": [], "max_tokens": 5}', ChatCompletionRequest)
    assert err.value.status == 400 and err.value.param == "messages"
    with pytest.raises(APIError) as err:
        parse_body(b'{"model": "m", "prompt": "x", "tether": {"turn": -1}}', CompletionRequest)
    assert err.value.param == "tether.turn"
    with pytest.raises(APIError) as err:
        parse_body(b"[1, 2]", CompletionRequest)
    assert err.value.code == "invalid_json"


def test_identity_precedence_and_turn_counting() -> None:
    now = [0.0]
    tracker = ProgramTracker(idle_s=10.0, clock=lambda: now[0])
    body = parse_body(
        b'{"model": "m", "prompt": "x", "session_id": "s", "prompt_cache_key": "k"}', CompletionRequest
    )
    assert tracker.hints(body, "h") == ProgramHints(program_id="s", turn=0)
    assert tracker.hints(body, "h") == ProgramHints(program_id="s", turn=1)
    keyed = parse_body(b'{"model": "m", "prompt": "x", "prompt_cache_key": "k"}', CompletionRequest)
    assert tracker.hints(keyed, "h").program_id == "k"
    header = parse_body(b'{"model": "m", "prompt": "x"}', CompletionRequest)
    assert tracker.hints(header, "h").program_id == "h"
    assert tracker.hints(header, None) is None
    ext = parse_body(
        b'{"model": "m", "prompt": "x", "session_id": "s", "tether": {"program_id": "t", "turn": 7,'
        b' "next_tool": "bash", "last_turn": true}}',
        CompletionRequest,
    )
    assert tracker.hints(ext, None) == ProgramHints(program_id="t", turn=7, next_tool="bash", last_turn=True)
    tracker.started("s")
    now[0] = 11.0
    assert sorted(tracker.idle()) == ["h", "k", "t"]  # "s" has a request in flight
    tracker.finished("s")
    assert "s" not in tracker.idle()
    now[0] = 21.0
    assert "s" in tracker.idle()


def _finished(text: str, hints: ProgramHints | None = None) -> Sequence:
    seq = Sequence("r1", [1, 2], SamplingParams(), hints=hints or ProgramHints("p"))
    seq.output_text = text
    return seq


def test_turn_outcome_reads_the_output_of_requests_that_offered_tools() -> None:
    outcomes = TurnOutcomes()
    tools = [Tool("bash"), Tool("edit")]
    outcomes.expect_tool_calls("r1", tools)
    call = '<tool_call>\n{"name": "edit", "arguments": {}}\n</tool_call>'
    assert outcomes.outcome(_finished(call)) == TurnOutcome("edit", last_turn=False)
    outcomes.expect_tool_calls("r1", tools)
    assert outcomes.outcome(_finished("The answer is 4.")) == TurnOutcome(None, last_turn=True)
    outcomes.expect_tool_calls("r1", tools)
    assert outcomes.outcome(_finished("<tool_call>\nnot json")) == TurnOutcome(None, last_turn=False)
    # no tools offered: what the client's tether object said (read only now, at the turn's end)
    hinted = ProgramHints("p", next_tool="bash:ls")
    assert outcomes.outcome(_finished(call, hinted)) == TurnOutcome("bash:ls", last_turn=False)


def test_the_server_times_a_remote_clients_tool_from_its_call_to_the_next_request() -> None:
    """The client runs its tools: the pause from a turn that called one to the program's next request is the
    tool's duration, recorded once; an answer, or a program ended meanwhile, records nothing."""
    from tether.tools.durations import ToolDurationStats

    now = [0.0]
    stats = ToolDurationStats()
    outcomes = TurnOutcomes(stats, clock=lambda: now[0])
    call = '<tool_call>\n{"name": "edit", "arguments": {}}\n</tool_call>'
    outcomes.expect_tool_calls("r1", [Tool("edit")])
    now[0] = 1.0
    outcomes.outcome(_finished(call))
    now[0] = 3.5
    timed = outcomes.resumed("p")
    assert timed == ToolTime("edit", 2.5, 1.0, pytest.approx(-math.log(0.05)))  # predicted by the prior
    assert outcomes.resumed("p") is None  # a second request of the same turn: the tool was timed already
    assert stats.count("edit") == 1 and stats.running_mean("edit") == 2.5
    outcomes.expect_tool_calls("r1", [Tool("edit")])
    outcomes.outcome(_finished(call))
    outcomes.ended("p")
    outcomes.resumed("p")
    outcomes.expect_tool_calls("r1", [Tool("edit")])
    outcomes.outcome(_finished("The answer is 4."))
    outcomes.resumed("p")
    assert stats.count("edit") == 1


def test_a_message_without_content_is_refused_naming_it() -> None:
    from tether.runtime.server.chat import _messages

    def body(*messages: dict) -> ChatCompletionRequest:
        return ChatCompletionRequest(model="m", messages=list(messages))

    with pytest.raises(APIError) as err:
        _messages(body({"role": "user", "content": "hi"}, {"role": "user"}))
    assert (err.value.status, err.value.param, err.value.code) == (
        400,
        "messages[1].content",
        "missing_field",
    )
    with pytest.raises(APIError, match="messages\\[0\\].content"):
        _messages(body({"role": "tool", "content": None, "tool_call_id": "c"}))
    with pytest.raises(APIError, match="messages\\[0\\].content"):
        _messages(body({"role": "assistant"}))
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    assert _messages(body({"role": "user", "content": ""}, {"role": "assistant", "tool_calls": [call]}))


def test_a_request_without_max_tokens_is_capped_by_the_server_default() -> None:
    from tether.runtime.server.sampling import max_tokens_for
    from tether.runtime.server.serving import DEFAULT_MAX_TOKENS, ServerConfig

    assert ServerConfig(("m",)).max_tokens_default == DEFAULT_MAX_TOKENS == 1024
    assert max_tokens_for(None, 100, 8192, "prompt", 1024) == 1024
    assert max_tokens_for(None, 7800, 8192, "prompt", 1024) == 392  # the rest of the context is smaller
    assert max_tokens_for(None, 100, 8192, "prompt", None) == 8092  # no cap: up to the end of the context
    assert max_tokens_for(3000, 100, 8192, "prompt", 1024) == 3000  # a request's own value wins
    with pytest.raises(APIError, match="maximum context length is 8192"):
        max_tokens_for(None, 8192, 8192, "prompt", 1024)
