"""The `power` section of summary.json and the power_policy frame, for runs with a power policy.

Peak IT power is read from the recorder's timeseries (what the run drew), the budget from the
governor's rows (engine/power.py), one row per level change on the same instants; both are
piecewise constant, so seconds over budget and capped accelerator-hours are exact sums.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from dcsim.model import Job, JobState

POWER_COLUMNS = ["time_s", "budget_w", "power_it_w", "capped_accelerators", "nodes_off", "nodes_waking"]
TOLERANCE_W = 1e-6  # float noise allowed above the budget


def power_policy_frame(rows: Sequence[tuple[float, float, float, int, int, int]], end_time: float) -> pd.DataFrame:
    rows = list(rows)
    if rows and rows[-1][0] < end_time:
        rows.append((end_time, *rows[-1][1:]))
    frame = pd.DataFrame.from_records(rows, columns=POWER_COLUMNS)
    return frame.astype({"time_s": "float64", "budget_w": "float64", "power_it_w": "float64",
                         "capped_accelerators": "int64", "nodes_off": "int64", "nodes_waking": "int64"})


def power_summary(policy: str, frame: pd.DataFrame, timeseries: pd.DataFrame, jobs: Sequence[Job],
                  wakes: int, deferred_s: float) -> dict[str, Any]:
    times = frame["time_s"].to_numpy(dtype=float)
    spans = np.diff(times, append=times[-1]) if len(times) else np.zeros(0)
    budget = frame["budget_w"].to_numpy(dtype=float)
    # The recorder's IT power on the governor's instants (the same instants; asof for safety).
    it = pd.merge_asof(frame[["time_s"]], timeseries[["time_s", "power_it_w"]], on="time_s")["power_it_w"]
    it_w = it.to_numpy(dtype=float)
    has_budget = ~np.isnan(budget)
    over = has_budget & (it_w > budget + TOLERANCE_W)
    section: dict[str, Any] = {
        "policy": policy,
        "peak_it_w": float(timeseries["power_it_w"].max()) if len(timeseries) else 0.0,
        "budget_min_w": float(np.nanmin(budget)) if has_budget.any() else None,
        "peak_over_budget_w": float(np.max(it_w[has_budget] - budget[has_budget])) if has_budget.any() else None,
        "over_budget_s": float(spans[over].sum()),
        "capped_accelerator_hours": float((frame["capped_accelerators"].to_numpy() * spans).sum() / 3600.0),
        "shutdown_node_hours": float((frame["nodes_off"].to_numpy() * spans).sum() / 3600.0),
        "wakes": wakes,
    }
    deferrable = [job for job in jobs if job.deferrable]
    if deferrable:
        done = [job for job in deferrable if job.state is JobState.COMPLETED and job.end is not None]
        missed = [job for job in done if job.deadline is not None and job.end > job.deadline + 1e-9]  # type: ignore[operator]
        unfinished = [job for job in deferrable if job.state is not JobState.COMPLETED]
        section["deferral"] = {
            "deferrable_jobs": len(deferrable),
            "deferred_hours": deferred_s / 3600.0,
            "deadlines_met": len(done) - len(missed),
            "deadlines_missed": len(missed),
            "not_completed": len(unfinished),
        }
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in section.items()}
