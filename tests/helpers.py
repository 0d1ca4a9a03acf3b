"""Small scenario builders shared by tests (plain dicts, as a YAML file would give)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
SHARED_DATA = ROOT.parent / "shared" / "data"
PHILLY = SHARED_DATA / "philly-pollux" / "philly.csv"


def tiny_scenario(**changes: Any) -> dict[str, Any]:
    """Two pools (H100 and TPU-v4), 60 synthetic jobs; `changes` replace top-level keys."""
    data: dict[str, Any] = {
        "name": "tiny",
        "seed": 3,
        "cluster": {"node_pools": [
            {"name": "gpu", "count": 2, "accelerator": "H100", "accelerators_per_node": 8,
             "host_power": {"idle": "500W", "busy": "900W"}},
            {"name": "tpu", "count": 2, "accelerator": "TPU-v4", "accelerators_per_node": 4,
             "host_power": {"idle": "200W"}},
        ]},
        "workload": {"training": {
            "source": "synthetic", "jobs": 60, "arrival": {"process": "poisson", "rate": "30/h"},
            "accelerators": {"values": [1, 2, 4, 8], "weights": [4, 2, 2, 1]},
            "duration": {"distribution": "lognormal", "median": "20min", "sigma": 1.0},
            "models": {"ResNet-50": 1, "LM": 1}, "estimate_error": 0.5, "startup": "1min",
        }},
        "policies": {"scheduler": "fifo", "placement": "pack"},
    }
    data.update(copy.deepcopy(changes))
    return data


def speed_ratio(model: str, accelerator: str, reference: str) -> float:
    """Training speed of `model` on `accelerator` over its speed on `reference`, from the shipped calibration."""
    from dcsim.calibration import load_calibration

    calibration = load_calibration()
    return calibration.relative_speed(model, accelerator) / calibration.relative_speed(model, reference)
