"""MQTT topic names used by tool clients and workers (all under ``tether/``).

```
tether/tools/<tool>/call            calls any worker of the group may take ($share/<group>/... subscription)
tether/workers/<worker>/call        calls addressed to one worker (client-side choice; any broker)
tether/workers/<worker>/status      retained WorkerStatus JSON (online; offline as the will; empty on exit)
tether/clients/<client>/reply       acks and results for one client (its reply_to)
```
"""

from __future__ import annotations

from tether.tools.mqtt.errors import MqttProtocolError

PREFIX = "tether"
STATUS_WILDCARD = f"{PREFIX}/workers/+/status"
DEFAULT_GROUP = "tether"


def check_level(name: str, what: str) -> str:
    """``name`` if it can stand as one topic level (non-empty, no ``/``, ``+``, ``#`` or NUL)."""
    if not name or any(c in name for c in "/+#\0") or name.startswith("$"):
        raise MqttProtocolError(
            f"{what} {name!r} cannot be used in an MQTT topic (no '/', '+', '#', leading '$')"
        )
    return name


def tool_call(tool: str) -> str:
    return f"{PREFIX}/tools/{check_level(tool, 'tool name')}/call"


def shared_tool_call(group: str, tool: str) -> str:
    return f"$share/{check_level(group, 'group')}/{tool_call(tool)}"


def worker_call(worker_id: str) -> str:
    return f"{PREFIX}/workers/{check_level(worker_id, 'worker id')}/call"


def worker_status(worker_id: str) -> str:
    return f"{PREFIX}/workers/{check_level(worker_id, 'worker id')}/status"


def client_reply(client_id: str) -> str:
    return f"{PREFIX}/clients/{check_level(client_id, 'client id')}/reply"


def status_worker_id(topic: str) -> str | None:
    """The worker id of a status topic, ``None`` for any other topic."""
    parts = topic.split("/")
    if len(parts) == 4 and parts[0] == PREFIX and parts[1] == "workers" and parts[3] == "status":
        return parts[2]
    return None
