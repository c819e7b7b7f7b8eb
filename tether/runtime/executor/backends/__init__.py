"""LLM backends: ``LocalEngineBackend`` (this repo's engine, with ``ProgramHints``) and ``OpenAIBackend`` (any
OpenAI-compatible server). Import the one you use: the local engine needs torch, the OpenAI one the
``openai`` SDK (no torch)."""
