"""A progress bar for one workflow run (``tether run``): a trace sink in front of the run's own, counting nodes.

``NodeProgress`` forwards every event to the sink behind it and moves a tqdm bar: the total is the compiled
program's nodes plus those added while it runs (``node_added``); a node counts as done when it ends, fails or is
cancelled. The bar's postfix carries the tokens the run's LLM calls generated, so its rate line reads as work
done. The bar is drawn on the thread that calls ``emit`` (the executor's event loop: the engine sends its own
events to the run's sink directly). ``close`` closes the bar only: the sink behind it stays its owner's.
"""

from __future__ import annotations

from typing import TextIO

from tether.runtime.tracing.events import TraceEvent
from tether.runtime.tracing.writer import TraceSink

DONE_KINDS = frozenset({"node_end", "node_error", "node_cancelled"})


class NodeProgress:
    def __init__(self, inner: TraceSink | None, total: int, stream: TextIO, name: str) -> None:
        from tqdm import tqdm

        self.inner = inner
        self.generated = 0
        self._done: set[tuple[str, str | None]] = set()  # (program, node): a node is counted once
        self.bar = tqdm(total=total, desc=name, unit="node", file=stream, dynamic_ncols=True)

    def emit(self, event: TraceEvent) -> None:
        if self.inner is not None:
            self.inner.emit(event)
        if event.kind == "node_added":
            self.bar.total += 1
            self.bar.refresh()
        elif event.kind in DONE_KINDS and (event.program_id, event.node_id) not in self._done:
            self._done.add((event.program_id, event.node_id))
            self.bar.update(1)
        elif event.kind == "llm_turn":
            self.generated += int(event.attrs.get("gen_ai.usage.output_tokens") or 0)
            self.bar.set_postfix(generated=f"{self.generated} tok", refresh=True)

    def close(self) -> None:
        self.bar.close()
