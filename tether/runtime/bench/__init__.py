"""Benchmarks behind ``tether bench ...`` (performance goals live here, never in timed tests)."""
