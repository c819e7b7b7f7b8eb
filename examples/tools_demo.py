"""Tools for ``examples/research.yaml``: a tiny in-memory corpus to search and read, and a word counter.

Load them with ``tools: [tools_demo.py]`` in a workflow, or serve them to remote runs with
``tether worker --broker mqtt://127.0.0.1:1883 --tools examples/tools_demo.py``. The richer tools of the agent
examples (document search, calculator, unit conversion, table lookup) are in ``agent_tools.py``.
"""

from __future__ import annotations

import asyncio
import re

from pydantic import BaseModel

from tether.tools import tool

CORPUS = {
    "pagedattention": (
        "PagedAttention",
        "vLLM stores the KV cache in fixed-size blocks, like virtual memory pages, so sequences share "
        "prefix blocks and memory is not fragmented.",
    ),
    "continuum": (
        "Continuum",
        "Continuum pins an agent's KV cache during a tool call for a time-to-live chosen from the tool's "
        "duration distribution, so the next turn does not prefill the whole context again.",
    ),
    "hydragen": (
        "Hydragen",
        "Hydragen computes attention over a prefix shared by many sequences as one matrix product and "
        "merges it with each sequence's own suffix attention by log-sum-exp.",
    ),
    "llmcompiler": (
        "LLMCompiler",
        "LLMCompiler plans a DAG of function calls and runs independent calls in parallel, which cuts the "
        "latency of agents that would otherwise call tools one at a time.",
    ),
}


class Hit(BaseModel):
    doc_id: str
    title: str
    score: int


class Page(BaseModel):
    doc_id: str
    title: str
    text: str


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


@tool
def search(query: str, k: int = 2) -> list[Hit]:
    """Find the documents that share the most words with the query.

    Args:
        query: what to look for.
        k: how many hits to return, best first.
    """
    q = _words(query)
    scored = [
        Hit(doc_id=doc_id, title=title, score=len(q & _words(f"{title} {text}")))
        for doc_id, (title, text) in CORPUS.items()
    ]
    scored.sort(key=lambda h: (-h.score, h.doc_id))
    return scored[:k]


@tool(max_concurrency=4)
async def fetch(doc_id: str) -> Page:
    """Read one document (simulates a 50 ms network fetch).

    Args:
        doc_id: the id a search hit gave.
    """
    await asyncio.sleep(0.05)
    if doc_id not in CORPUS:
        raise KeyError(f"no document {doc_id!r}")
    title, text = CORPUS[doc_id]
    return Page(doc_id=doc_id, title=title, text=text)


@tool
def word_count(text: str) -> int:
    """Count the words of a text.

    Args:
        text: any text.
    """
    return len(text.split())
