"""SmolLM2-135M-Instruct for end-to-end tests, loaded once per test run (session fixtures in conftest.py)."""

from __future__ import annotations

from typing import Any

# Eight chat prompts (the parity test's set).
CHAT_PROMPTS = (
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List three prime numbers.",
    "Explain what a GPU is in one sentence.",
    "Translate 'good morning' into Spanish.",
    "What is 12 times 7?",
    "Name a famous scientist and what they discovered.",
    "Give me one tip for learning to code.",
)


def conversation(prompt: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": prompt}]


def transformers_smollm2() -> Any:
    """The same GGUF file loaded by transformers' own GGUF path (float32, eager attention)."""
    import torch
    from transformers import AutoModelForCausalLM

    from tether.runtime.engine.models.sources import named_model_path

    path = named_model_path("smollm2")
    model = AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32, attn_implementation="eager"
    )
    return model.eval()
