"""The LLM engine: sequences, scheduler, model runner, sampler."""
