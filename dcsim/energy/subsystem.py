"""The energy subsystem's part of a run (listed in dcsim/subsystems.py): refined timeseries with
facility components, intensity and PUE; jobs and requests with their energy and carbon; the summary's
`energy` section. Used only when the energy section asks for series, weather or a facility model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from dcsim.energy.accounting import add_energy_columns, energy_section, factors, job_energy, refine, request_energy


def per_accelerator_power(model: Any) -> dict[str, tuple[float, float]]:
    """Accelerator model -> (W while held but not computing, W while computing), each with the
    accelerator's share of its host's busy-over-idle power. `model` is a build.model.Model."""
    cluster, power = model.cluster, model.recorder.power
    result = {}
    for index, name in enumerate(cluster.accelerator_models):
        idle = cluster.specs[name].idle_w.value
        hosts = [(node.host_busy_w - node.host_idle_w) / node.size for node in cluster.nodes
                 if node.accelerator == name and node.size]
        host_share = float(np.mean(hosts)) if hosts else 0.0
        result[name] = (idle + host_share, idle + power.accelerator_delta_w[index] + host_share)
    return result


def energy_contribution(model: Any, end_time: float, jobs: pd.DataFrame, timeseries: pd.DataFrame,
                        produced: Mapping[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """(frames replacing or joining the run's, the `energy` summary section)."""
    inputs, energy = model.energy, model.scenario.energy
    frame = add_energy_columns(refine(timeseries, inputs, end_time), inputs, energy)
    cumulative = factors(frame)
    frames: dict[str, pd.DataFrame] = {"timeseries": frame}
    segments = produced.get("job_segments")
    jobs_out = None
    if segments is not None and len(jobs):
        jobs_out = job_energy(jobs, segments, cumulative, per_accelerator_power(model), inputs.price is not None)
        frames["jobs"] = jobs_out
    requests, replicas = produced.get("requests"), produced.get("replicas")
    requests_out = None
    if requests is not None and replicas is not None:
        requests_out = request_energy(requests, replicas, cumulative)
        frames["requests"] = requests_out
    section = energy_section(frame, end_time, inputs, energy, jobs_out, requests_out, it_budget(model))
    return frames, section


def it_budget(model: Any) -> pd.DataFrame | None:
    """The power governor's budget over time (time_s, budget_w; NaN: none in force), or None without one.

    The budget limits IT power (the governor caps accelerators against IT power, engine/power.py), so
    the summary and the chart set it against IT power, not facility power."""
    governor = getattr(model, "power", None)
    rows = getattr(governor, "rows", None)
    if not rows:
        return None
    frame = pd.DataFrame({"time_s": [row[0] for row in rows], "budget_w": [row[1] for row in rows]},
                         dtype="float64")
    return frame if frame["budget_w"].notna().any() else None
