"""``tether worker``: serve ``@tool`` functions to remote runtimes over MQTT.

    tether worker --broker mqtt://127.0.0.1:1883 --tools mytools [--tools path/to/more.py]
    tether worker --embedded-broker --broker mqtt://127.0.0.1:1883 --tools mytools   # one machine

Runs until SIGINT/SIGTERM (then finishes running calls within ``--grace`` seconds). Prints one line when it
is serving; exits 2 when the tools cannot be loaded, 1 when the broker cannot be reached at start. A connection
lost later is re-established with backoff (``ToolWorker(reconnect=True)``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="serve @tool functions to remote runtimes over MQTT")
    p.add_argument("--broker", required=True, help="broker address, e.g. mqtt://127.0.0.1:1883")
    p.add_argument(
        "--tools",
        action="append",
        required=True,
        metavar="MODULE",
        help="a module name or a .py path whose @tool functions are served (repeatable)",
    )
    p.add_argument("--group", default="tether", help="shared-subscription group (default: tether)")
    p.add_argument("--worker-id", default=None, help="this worker's id (default: random)")
    p.add_argument("--concurrency", type=int, default=64, help="calls running at once (default: 64)")
    p.add_argument("--keepalive", type=int, default=5, help="MQTT keepalive seconds (default: 5)")
    p.add_argument("--grace", type=float, default=10.0, help="seconds to finish running calls on exit")
    p.add_argument(
        "--ack-after", type=float, default=0.02, help="ack a call once it has run this long (seconds)"
    )
    shared = p.add_mutually_exclusive_group()
    shared.add_argument(
        "--shared", dest="shared", action="store_const", const=True, default=None, help="require shared subs"
    )
    shared.add_argument(
        "--no-shared", dest="shared", action="store_const", const=False, help="take direct calls only"
    )
    p.add_argument(
        "--embedded-broker",
        action="store_true",
        help="also run an in-process amqtt broker listening on the --broker address",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tether.tools.errors import ToolError
    from tether.tools.registry import ToolRegistry

    registry = ToolRegistry()
    try:
        for spec in args.tools:
            registry.load(spec, base_dir=Path.cwd())
    except ToolError as exc:
        print(f"tether worker: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(args, registry))
    except ToolError as exc:
        print(f"tether worker: {exc}", file=sys.stderr)
        return 1


async def _serve(args: argparse.Namespace, registry: object) -> int:
    from tether.tools.mqtt.broker import EmbeddedBroker
    from tether.tools.mqtt.connection import BrokerAddress
    from tether.tools.mqtt.worker import ToolWorker

    async with contextlib.AsyncExitStack() as stack:
        url = args.broker
        if args.embedded_broker:
            address = BrokerAddress.parse(args.broker)
            broker = await stack.enter_async_context(EmbeddedBroker(address.host, address.port))
            url = broker.url
        worker = ToolWorker(
            url,
            registry,  # type: ignore[arg-type]
            worker_id=args.worker_id,
            group=args.group,
            shared=args.shared,
            concurrency=args.concurrency,
            keepalive=args.keepalive,
            grace=args.grace,
            ack_after=args.ack_after,
        )
        await worker.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        mode = f"shared group {worker.group}" if worker.shared else "direct calls only"
        print(
            f"tether worker {worker.worker_id} serving {', '.join(worker.tools)} on {url} ({mode})",
            flush=True,
        )
        stopped = asyncio.create_task(stop.wait())
        closed = asyncio.create_task(worker.wait())
        await asyncio.wait({stopped, closed}, return_when=asyncio.FIRST_COMPLETED)
        if closed.done():
            stopped.cancel()
            closed.result()  # raises BrokerConnectionError when the connection was lost
            return 1
        await worker.stop()
        closed.cancel()
    return 0
