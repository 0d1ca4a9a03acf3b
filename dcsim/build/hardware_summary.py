"""summary.json `hardware`: the cluster's user-defined accelerators whose speeds no measurement backs.

Present only when the cluster has such a part, so every other run keeps its summary unchanged. Each
entry says what the extrapolation starts from and where the part was defined (issue 15). Shipped parts
without measurements of their own (TPU-v4, H200, ...) are extrapolated too; `dcsim calibration list`
marks them, but they are left out here so the summaries of existing scenarios stay as they were.
"""

from __future__ import annotations

from typing import Any

from dcsim.build.model import Model
from dcsim.scenario.accelerators import scenario_calibration


def hardware_section(model: Model) -> dict[str, Any] | None:
    calibration = scenario_calibration(model.scenario)
    entries: dict[str, Any] = {}
    for name in model.cluster.accelerator_models:
        spec = model.cluster.specs[name]
        basis = calibration.speed_basis(name)
        if basis == "measured" or not spec.user_defined:
            continue
        entries[name] = {"speeds": basis, "defined_in": spec.origin}
    return {"extrapolated": entries} if entries else None
