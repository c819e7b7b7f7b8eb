"""Simulated time: the real scheduler and KV cache with the model replaced by a cost model."""
