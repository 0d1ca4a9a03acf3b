"""summary.json from the frames: the metrics contract of DESIGN.md, computed, never hand-set.

Time-weighted levels integrate each timeseries row over the interval until the next row, so energy
is exact for piecewise-constant power. Wait statistics cover jobs that started; JCT and slowdown
cover completed jobs (a job still waiting or running at the end has no JCT yet); comm_share and
io_share (exposed communication and I/O time over computing time) cover jobs that computed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

STAT_KEYS = ("mean", "p50", "p95", "p99", "max")
J_PER_KWH = 3.6e6


def stats(values: Sequence[float] | np.ndarray | pd.Series) -> dict[str, float | None]:
    array = np.asarray(values, dtype=float)
    array = array[~np.isnan(array)]
    if array.size == 0:
        return dict.fromkeys(STAT_KEYS)
    p50, p95, p99 = np.percentile(array, [50, 95, 99])
    return {"mean": float(array.mean()), "p50": float(p50), "p95": float(p95), "p99": float(p99),
            "max": float(array.max())}


def interval_weights(timeseries: pd.DataFrame) -> np.ndarray:
    """Duration each row holds (the last row, at the end time, holds for 0 s)."""
    times = timeseries["time_s"].to_numpy(dtype=float)
    return np.diff(times, append=times[-1] if len(times) else 0.0)


def summarize(
    *, scenario_name: str, seed: int, version: str, sim_time: float, wall_time: float,
    timeseries: pd.DataFrame, capacity: Mapping[str, int], pue: float, carbon_intensity: float, events: int,
) -> dict[str, Any]:
    """The sections every run has; each subsystem adds its own (dcsim/subsystems.py)."""
    weights = interval_weights(timeseries)
    summary: dict[str, Any] = {
        "scenario": scenario_name, "seed": seed, "dcsim_version": version, "sim_time_s": sim_time,
        "wall_time_s": wall_time, "events": events,
        "cluster": {"accelerators": dict(capacity), "total_accelerators": sum(capacity.values())},
    }
    summary["utilization"] = _utilization(timeseries, weights, capacity, sim_time)
    summary["queue"] = {
        "length_mean": _time_mean(timeseries["queue_length"], weights, sim_time),
        "length_max": int(timeseries["queue_length"].max()) if len(timeseries) else 0,
    }
    summary["energy"] = _energy(timeseries, weights, sim_time, pue, carbon_intensity)
    return round_floats(summary)


def training_summary(jobs: pd.DataFrame, generated: int) -> dict[str, Any]:
    """The `training` section: counts, waits, JCTs and slowdowns of the jobs frame."""
    completed = jobs[jobs["state"] == "completed"]
    section: dict[str, Any] = {
        "jobs_submitted": len(jobs),
        "jobs_after_horizon": generated - len(jobs),  # in the workload, but due after the horizon
        "jobs_completed": len(completed),
        "jobs_unfinished": int((jobs["state"] == "unfinished").sum()),
        "jobs_rejected": int((jobs["state"] == "rejected").sum()),
        "jobs_failed": int((jobs["state"] == "failed").sum()),
        "wait_s": stats(jobs["wait_s"]),
        "jct_s": stats(completed["jct_s"]),
        "slowdown": stats(completed["slowdown"]),
        "makespan_s": float(completed["end_s"].max() - jobs["submit_s"].min()) if len(completed) else None,
    }
    for share in ("comm_share", "io_share"):  # over jobs that computed (the share is NaN for the others)
        if share in jobs:
            section[share] = stats(jobs[share])
    return section


def _utilization(ts: pd.DataFrame, weights: np.ndarray, capacity: Mapping[str, int], sim_time: float) -> dict[str, Any]:
    total = sum(capacity.values())
    result: dict[str, dict[str, float]] = {"allocated": {}, "busy": {}}
    for kind in ("allocated", "busy"):
        result[kind]["all"] = _time_mean(ts[f"{kind}_all"], weights, sim_time) / total if total else 0.0
        for model, count in capacity.items():
            result[kind][model] = _time_mean(ts[f"{kind}_{model}"], weights, sim_time) / count
    return result


def _energy(ts: pd.DataFrame, weights: np.ndarray, sim_time: float, pue: float, carbon: float) -> dict[str, Any]:
    components = {name: float(np.dot(ts[f"power_{name}_w"].to_numpy(dtype=float), weights)) / J_PER_KWH
                  for name in ("accelerators", "hosts", "network", "storage")}
    it_kwh = sum(components.values())
    it_w = ts["power_it_w"].to_numpy(dtype=float)
    facility_kwh = it_kwh * pue
    return {
        "it_kwh": it_kwh, "facility_kwh": facility_kwh, "pue": pue,
        "avg_power_kw": facility_kwh * J_PER_KWH / sim_time / 1e3 if sim_time > 0 else 0.0,
        "peak_power_kw": float(it_w.max()) * pue / 1e3 if len(it_w) else 0.0,
        "by_component_kwh": components,
        "carbon_kg": facility_kwh * carbon / 1e3,
    }


def _time_mean(values: pd.Series, weights: np.ndarray, sim_time: float) -> float:
    if sim_time <= 0:
        return 0.0
    return float(np.dot(values.to_numpy(dtype=float), weights)) / sim_time


def round_floats(value: Any, digits: int = 10) -> Any:
    """Round floats to `digits` significant digits so summary.json is stable across platforms."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: round_floats(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [round_floats(v, digits) for v in value]
    return value
