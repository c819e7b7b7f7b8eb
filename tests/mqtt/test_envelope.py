"""The JSON envelope, topic names and broker addresses (no broker needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tether.tools.errors import ToolArgumentError, ToolExecutionError
from tether.tools.mqtt import topics
from tether.tools.mqtt.connection import BrokerAddress
from tether.tools.mqtt.envelope import (
    AckEnvelope,
    CallEnvelope,
    ErrorInfo,
    ResultEnvelope,
    WorkerStatus,
    decode_call,
    decode_reply,
    decode_status,
    encode,
)
from tether.tools.mqtt.errors import BrokerConnectionError, MqttProtocolError, remote_error


def test_call_round_trip() -> None:
    call = CallEnvelope(
        call_id="run1:n3", tool="add", args={"a": 1, "b": [2, 3]}, reply_to="r", deadline=12.5, attempt=2
    )
    assert decode_call(encode(call)) == call


def test_replies_are_told_apart_by_kind() -> None:
    ok = ResultEnvelope(call_id="c", ok=True, result={"x": 1}, worker="w")
    err = ResultEnvelope(
        call_id="c", ok=False, error=ErrorInfo(type="ToolExecutionError", message="m", tool="t")
    )
    ack = AckEnvelope(call_id="c", worker="w", attempt=3)
    assert [decode_reply(encode(m)) for m in (ok, err, ack)] == [ok, err, ack]


def test_result_carries_exactly_one_outcome() -> None:
    with pytest.raises(ValueError, match="must carry an error"):
        ResultEnvelope(call_id="c", ok=False)
    with pytest.raises(ValueError, match="carries no error"):
        ResultEnvelope(call_id="c", ok=True, error=ErrorInfo(type="X", message="m", tool="t"))


def test_malformed_call_names_the_field() -> None:
    with pytest.raises(MqttProtocolError, match="call_id"):
        decode_call(b'{"tool": "add", "args": {}, "reply_to": "r"}')
    with pytest.raises(MqttProtocolError, match="attempt"):
        decode_call(b'{"call_id": "c", "tool": "add", "args": {}, "reply_to": "r", "attempt": 0}')
    with pytest.raises(MqttProtocolError, match="x: Extra inputs are not permitted"):
        decode_call(b'{"call_id": "c", "tool": "add", "args": {}, "reply_to": "r", "x": 1}')


def test_status_offline_forms() -> None:
    online = WorkerStatus(worker_id="w1", tools=("add",), shared=True, group="g")
    assert decode_status(encode(online)) == online
    assert decode_status(encode(WorkerStatus(worker_id="w1", state="offline"))) is None
    assert decode_status(b"") is None


def test_topics() -> None:
    assert topics.shared_tool_call("g", "web.search") == "$share/g/tether/tools/web.search/call"
    assert topics.worker_call("w1") == "tether/workers/w1/call"
    assert topics.status_worker_id(topics.worker_status("w1")) == "w1"
    assert topics.status_worker_id("tether/clients/c/reply") is None
    for bad in ("a/b", "a+", "#", "", "$sys"):
        with pytest.raises(MqttProtocolError, match="cannot be used in an MQTT topic"):
            topics.tool_call(bad)


def test_broker_address() -> None:
    assert BrokerAddress.parse("mqtt://10.0.0.5:1999") == BrokerAddress("10.0.0.5", 1999)
    assert BrokerAddress.parse("localhost") == BrokerAddress("localhost", 1883)
    assert str(BrokerAddress.parse("tcp://h:7")) == "mqtt://h:7"
    with pytest.raises(BrokerConnectionError, match="http://h"):
        BrokerAddress.parse("http://h")


def test_remote_errors_keep_the_local_types() -> None:
    info = ErrorInfo(
        type="ToolArgumentError", message="tool 'add': argument 'a': bad", tool="add", details={"field": "a"}
    )
    exc = remote_error(info, "c1", "w1")
    assert isinstance(exc, ToolArgumentError) and exc.field == "a" and exc.tool == "add"
    assert str(exc) == "tool 'add': argument 'a': bad [remote on worker w1, call c1]"
    other = remote_error(ErrorInfo(type="ToolResultError", message="m", tool="t"), "c2", None)
    assert isinstance(other, ToolExecutionError) and other.cause_type == "ToolResultError"


def test_import_pulls_in_no_tensor_library_nor_the_embedded_broker() -> None:
    code = (
        "import sys, tether.tools.mqtt; loaded = {m.split('.')[0] for m in sys.modules}; "
        "bad = {'torch', 'numpy', 'amqtt'} & loaded; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], check=True)
