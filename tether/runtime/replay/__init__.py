"""Replay of real agent traces against scheduling policies, on the real engine or in simulated time."""
