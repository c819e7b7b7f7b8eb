"""Typed tools, their registry and duration statistics, local and MQTT execution (see the tools issue)."""
