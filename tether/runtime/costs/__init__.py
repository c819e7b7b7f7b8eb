"""Step-time models: how long one engine step takes, from its shape (torch-free).

The engine's policies read them to weigh a cache's worth, the simulation advances its clock by them and
``tether calibrate`` fits them; this package imports neither the engine nor the simulation."""

from __future__ import annotations

from tether.runtime.costs.cost_model import (
    H100_LLAMA31_8B,
    Chunk,
    CostModel,
    LinearCostModel,
    RooflineCostModel,
    default_cost_model_name,
    load_cost_model,
    step_features,
)

__all__ = [
    "H100_LLAMA31_8B",
    "Chunk",
    "CostModel",
    "LinearCostModel",
    "RooflineCostModel",
    "default_cost_model_name",
    "load_cost_model",
    "step_features",
]
