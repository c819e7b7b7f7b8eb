"""The DAG compiler, the executor and the OpenAI backend import without torch: a workflow whose LLM calls go
to a remote server (or that has none) runs where torch is absent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_no_tensor_library_is_imported() -> None:
    code = (
        "import sys, tether.dag, tether.dag.compiler, tether.dag.yaml_loader, tether.runtime.executor, "
        "tether.runtime.tracing, tether.runtime.executor.backends.openai, tether.cli.run; "
        "bad = {'torch', 'numpy'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
